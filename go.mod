module github.com/rmt-project/rmt

go 1.26.8

require (
	github.com/mediocregopher/radix/v4 v4.1.4
	github.com/tidwall/redcon v1.6.4
	go.uber.org/zap v1.28.0
	go.yaml.in/yaml/v3 v3.0.6
	gopkg.in/natefinch/lumberjack.v2 v2.2.1
)

require (
	github.com/tidwall/btree v1.1.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tilinna/clock v1.0.2 // indirect
	go.uber.org/multierr v1.10.0 // indirect
)
