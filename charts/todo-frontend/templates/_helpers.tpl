{{/* Chart name, overridable. */}}
{{- define "todo-frontend.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name: fullnameOverride (default todo-frontend) keeps the Service name stable. */}}
{{- define "todo-frontend.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "todo-frontend.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "todo-frontend.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "todo-frontend.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "todo-frontend.labels" -}}
helm.sh/chart: {{ include "todo-frontend.chart" . }}
{{ include "todo-frontend.baseLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todo-chatbot
{{- end }}

{{- define "todo-frontend.baseLabels" -}}
app.kubernetes.io/name: {{ include "todo-frontend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of the serving pods only: hook and test pods share name/instance but not the
component, so the Service never routes to them. */}}
{{- define "todo-frontend.selectorLabels" -}}
{{ include "todo-frontend.baseLabels" . }}
app.kubernetes.io/component: web
{{- end }}

{{- define "todo-frontend.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* Pod-level securityContext (Pod Security "restricted"). */}}
{{- define "todo-frontend.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Container-level securityContext, shared by the app, hook and test containers. */}}
{{- define "todo-frontend.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}

{{/* API_BASE_URL: the backend's cluster DNS name in this release's namespace. */}}
{{- define "todo-frontend.apiBaseUrl" -}}
{{- if .Values.apiBaseUrl }}
{{- .Values.apiBaseUrl }}
{{- else }}
{{- printf "http://%s.%s.svc.cluster.local:%v" .Values.backend.serviceName .Release.Namespace .Values.backend.port }}
{{- end }}
{{- end }}
