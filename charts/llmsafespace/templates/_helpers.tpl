{{/* The release-scoped name of one service, e.g. "myrel-llmsafespace-exec-svc". */}}
{{- define "llmsafespace.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmsafespace.serviceName" -}}
{{- printf "%s-%s" (include "llmsafespace.fullname" .root) .svc.image | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmsafespace.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmsafespace
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one service: the component is the service's folder name. */}}
{{- define "llmsafespace.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .svc.image }}
{{- end -}}

{{- define "llmsafespace.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .svc.image $tag -}}
{{- end -}}

{{/* The Secret holding a dependency's URL (key: nats, postgresql or redis). */}}
{{- define "llmsafespace.connectionSecret" -}}
{{- $suffix := get (dict "nats" "nats" "postgresql" "database" "redis" "redis") .key -}}
{{- default (printf "%s-%s" (include "llmsafespace.fullname" .root) $suffix) (index .root.Values .key).existingSecret -}}
{{- end -}}

{{- define "llmsafespace.jwtSecret" -}}
{{- default (printf "%s-jwt" (include "llmsafespace.fullname" .)) .Values.jwt.existingSecret -}}
{{- end -}}

{{/* Services that drive sandboxes: sandbox-svc and warmpool-svc. */}}
{{- define "llmsafespace.managesSandboxes" -}}
{{- if or (eq .key "sandbox") (eq .key "warmpool") }}true{{ end -}}
{{- end -}}

{{/* The Secret holding the snapshot bucket's credentials; empty when there is none. */}}
{{- define "llmsafespace.snapshotSecret" -}}
{{- with .Values.snapshots.s3 -}}
{{- if .existingSecret -}}
{{- .existingSecret -}}
{{- else if .accessKeyId -}}
{{- printf "%s-snapshots" (include "llmsafespace.fullname" $) -}}
{{- end -}}
{{- end -}}
{{- end -}}
