# Jaeger v2 is released with paired tags: the Go module version (jaeger/go.mod)
# is the v1.x tag, the binary reports the matching v2.x tag set here.
# github.com/jaegertracing/jaeger v1.76.0 == Jaeger v2.13.0 (CHANGELOG.md).
JAEGER_V2_VERSION := v2.13.0
