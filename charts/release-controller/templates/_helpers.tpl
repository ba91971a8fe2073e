{{/*
Labels. The selector labels are the kustomize base's (app.kubernetes.io/name + component), so the
chart and manifests/ select the same pods; the common labels add part-of and Helm's own.
*/}}
{{- define "rc.selectorLabels" -}}
app.kubernetes.io/name: release-controller
app.kubernetes.io/component: operator
{{- end }}

{{- define "rc.labels" -}}
app.kubernetes.io/name: release-controller
app.kubernetes.io/part-of: release-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "rc.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The operator's ServiceAccount as an RBAC subject. */}}
{{- define "rc.subject" -}}
- kind: ServiceAccount
  name: {{ .Values.name }}
  namespace: {{ .Release.Namespace }}
{{- end }}
