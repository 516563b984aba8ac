// Package kubernetes checks the manifests beside it with the official Kubernetes API types
// (strict decoding: an unknown or misplaced field is an error), and that the job they carry
// loads as rmtd would load it in a pod. It is a module of its own, so that rmtd itself does
// not depend on the Kubernetes API; `make test` runs it.
package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/rmt-project/rmt/conf"
)

// objects decodes every document of every manifest, strictly, into its typed object.
func objects(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			var obj any
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "v1/Service":
				obj = &corev1.Service{}
			case "v1/ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1/Secret":
				obj = &corev1.Secret{}
			default:
				t.Fatalf("%s doc %d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s doc %d (%s): %v", f, i, tm.Kind, err)
			}
			name := obj.(metav1.Object).GetName()
			out[tm.Kind+"/"+name] = obj
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	objs := objects(t)
	sts, _ := objs["StatefulSet/rmtd"].(*appsv1.StatefulSet)
	cm, _ := objs["ConfigMap/rmtd"].(*corev1.ConfigMap)
	secret, _ := objs["Secret/rmtd"].(*corev1.Secret)
	svc, _ := objs["Service/rmtd"].(*corev1.Service)
	metrics, _ := objs["Service/rmtd-metrics"].(*corev1.Service)
	if sts == nil || cm == nil || secret == nil || svc == nil || metrics == nil {
		t.Fatalf("missing objects: %v", objs)
	}
	pod := sts.Spec.Template.Spec
	if sts.Spec.ServiceName != svc.Name || svc.Spec.ClusterIP != "None" {
		t.Errorf("the StatefulSet's service %q is not the headless %q", sts.Spec.ServiceName, svc.Name)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("want one volume per pod, got %d claim templates", len(sts.Spec.VolumeClaimTemplates))
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if n, err := strconv.Atoi(env["SHARDS"].Value); err != nil || int32(n) != *sts.Spec.Replicas {
		t.Errorf("SHARDS %q is not replicas %d", env["SHARDS"].Value, *sts.Spec.Replicas)
	}
	if f := env["POD_INDEX"].ValueFrom; f == nil || f.FieldRef == nil ||
		f.FieldRef.FieldPath != "metadata.labels['apps.kubernetes.io/pod-index']" {
		t.Errorf("POD_INDEX does not come from the pod-index label: %+v", env["POD_INDEX"])
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["admin"] != 8888 || ports["metrics"] != 9121 || c.ReadinessProbe.HTTPGet.Port.StrVal != "metrics" {
		t.Errorf("ports %v", ports)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("the pod may run as root")
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["data"] != "/data" || !slices.Contains(c.Args, "/etc/rmt/rmt.yaml") {
		t.Errorf("mounts %v, args %v", mounts, c.Args)
	}

	// The job loads as the pod's rmtd loads it: its variables set, its secrets files.
	dir := t.TempDir()
	text := cm.Data["rmt.yaml"]
	for key, val := range secret.StringData {
		path := filepath.Join(dir, key)
		if err := os.WriteFile(path, []byte(val), 0o600); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, "/etc/rmt/secret/"+key, path)
	}
	for i := range int(*sts.Spec.Replicas) {
		vars := map[string]string{"POD_INDEX": strconv.Itoa(i), "SHARDS": env["SHARDS"].Value,
			"ADMIN_PASSWORD": secret.StringData["admin-password"]}
		cfg, err := conf.LoadEnv("rmt.yaml", []byte(text), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Fatalf("pod %d: the ConfigMap's rmt.yaml: %v", i, err)
		}
		if si, sn := cfg.Common.ShardRule(); si != i || int32(sn) != *sts.Spec.Replicas {
			t.Errorf("pod %d takes shard %d/%d", i, si, sn)
		}
		if _, p := cfg.Source.Auth(); p != secret.StringData["source-password"] {
			t.Errorf("pod %d: source password not read from its file", i)
		}
		if !strings.HasSuffix(cfg.Common.MetricsListen, ":9121") || !strings.HasSuffix(cfg.Common.Listen, ":8888") {
			t.Errorf("pod %d: listens on %s and %s, the manifests expose 8888 and 9121", i, cfg.Common.Listen, cfg.Common.MetricsListen)
		}
	}
}
