{{/* Chart name, overridable. */}}
{{- define "todo-postgres.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name: fullnameOverride (default todo-postgres) keeps the Service name stable. */}}
{{- define "todo-postgres.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "todo-postgres.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "todo-postgres.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "todo-postgres.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "todo-postgres.labels" -}}
helm.sh/chart: {{ include "todo-postgres.chart" . }}
{{ include "todo-postgres.baseLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todo-chatbot
{{- end }}

{{- define "todo-postgres.baseLabels" -}}
app.kubernetes.io/name: {{ include "todo-postgres.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of the serving pods only: hook and test pods share name/instance but not the
component, so the Service never routes to them. */}}
{{- define "todo-postgres.selectorLabels" -}}
{{ include "todo-postgres.baseLabels" . }}
app.kubernetes.io/component: database
{{- end }}

{{- define "todo-postgres.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* Pod-level securityContext (Pod Security "restricted"). */}}
{{- define "todo-postgres.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Container-level securityContext, shared by the app, hook and test containers. */}}
{{- define "todo-postgres.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}

{{/* The Secret holding postgres-password. */}}
{{- define "todo-postgres.secretName" -}}
{{- default (printf "%s-auth" (include "todo-postgres.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* pg_isready against this server, as the configured user. */}}
{{- define "todo-postgres.isReady" -}}
exec:
  command: [pg_isready, -q, -h, 127.0.0.1, -p, {{ .Values.service.port | quote }}, -U, {{ .Values.auth.username | quote }}, -d, {{ .Values.auth.database | quote }}]
{{- end }}
