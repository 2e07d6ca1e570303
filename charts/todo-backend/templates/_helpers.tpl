{{/* Chart name, overridable. */}}
{{- define "todo-backend.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name: fullnameOverride (default todo-backend) keeps the Service name stable. */}}
{{- define "todo-backend.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "todo-backend.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "todo-backend.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "todo-backend.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "todo-backend.labels" -}}
helm.sh/chart: {{ include "todo-backend.chart" . }}
{{ include "todo-backend.baseLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todo-chatbot
{{- end }}

{{- define "todo-backend.baseLabels" -}}
app.kubernetes.io/name: {{ include "todo-backend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of the serving pods only: hook and test pods share name/instance but not the
component, so the Service never routes to them. */}}
{{- define "todo-backend.selectorLabels" -}}
{{ include "todo-backend.baseLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "todo-backend.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* The Secret holding database-url and openrouter-api-key. */}}
{{- define "todo-backend.secretName" -}}
{{- default .Values.secret.name .Values.secret.existingSecret }}
{{- end }}

{{/* True when the chart itself creates the Secret (from --set values). */}}
{{- define "todo-backend.createSecret" -}}
{{- if and (not .Values.secret.existingSecret) .Values.secret.databaseUrl }}true{{ end }}
{{- end }}

{{/* DATABASE_URL and OPENROUTER_API_KEY from the Secret; used by the app and the hook. */}}
{{- define "todo-backend.secretEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "todo-backend.secretName" . }}
      key: database-url
- name: OPENROUTER_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "todo-backend.secretName" . }}
      key: openrouter-api-key
      optional: true
{{- end }}

{{/* Pod-level securityContext (Pod Security "restricted"). */}}
{{- define "todo-backend.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Container-level securityContext, shared by the app, hook and test containers. */}}
{{- define "todo-backend.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}
