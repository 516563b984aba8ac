# rmtd as a container image: a static binary on scratch, run as a non-root user, with /data as
# the volume for the spool and checkpoints. Build it with `make image` (it builds the binary
# and the files under bin/image/ that this copies; no base image is needed).
#
#   docker run --network host -e RMT_SOURCE_SERVERS=10.0.0.1:6379 \
#       -e RMT_TARGET_SERVERS=10.0.0.2:6379 -v rmt-data:/data rmtd
#
# TLS to cloud endpoints needs no CA file: rmtd carries Mozilla's roots (x509roots/fallback),
# used when the system has none, as here.
FROM scratch
COPY --chown=65532:65532 bin/image/ /
USER 65532:65532
WORKDIR /data
VOLUME /data
ENV RMT_COMMON_DIR=/data RMT_COMMON_LISTEN=0.0.0.0:8888 RMT_COMMON_METRICS_LISTEN=0.0.0.0:9121
EXPOSE 8888 9121
ENTRYPOINT ["/rmtd"]
