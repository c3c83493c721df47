{{- define "dbward.name" -}}dbward-operator{{- end -}}
{{- define "dbward.labels" -}}
app.kubernetes.io/name: dbward-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: dbward
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "dbward.selector" -}}
app.kubernetes.io/name: dbward-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "dbward.operatorImage" -}}{{ .Values.operator.image.repository }}:{{ .Values.operator.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "dbward.sidecarImage" -}}{{ .Values.sidecar.image.repository }}:{{ .Values.sidecar.image.tag | default .Chart.AppVersion }}{{- end -}}
