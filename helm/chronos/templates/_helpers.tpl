{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "chronos.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: <release>-<chart>, or the release name when it
already contains the chart name.
*/}}
{{- define "chronos.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "chronos.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Names of the two components. The StatefulSet name stays within 52
characters so that its controller-revision-hash label fits in 63.
*/}}
{{- define "chronos.coordinator.fullname" -}}
{{- printf "%s-coordinator" (include "chronos.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chronos.worker.fullname" -}}
{{- printf "%s-worker" (include "chronos.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels (immutable: never add version or chart here).
*/}}
{{- define "chronos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chronos.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "chronos.labels" -}}
helm.sh/chart: {{ include "chronos.chart" . }}
{{ include "chronos.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: chronos
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of one component. Call with (dict "ctx" $ "component" "worker").
*/}}
{{- define "chronos.componentLabels" -}}
{{ include "chronos.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "chronos.componentSelectorLabels" -}}
{{ include "chronos.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "chronos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chronos.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Images. Workers and the test pod may override repository, tag and digest.
A digest (sha256:...) pins the image: REPOSITORY@DIGEST, the tag ignored.
*/}}
{{- define "chronos.imageRef" -}}
{{- if .digest }}{{ printf "%s@%s" .repo .digest }}{{ else }}{{ printf "%s:%s" .repo .tag }}{{ end }}
{{- end }}

{{- define "chronos.image" -}}
{{- include "chronos.imageRef" (dict "repo" .Values.image.repository "tag" (.Values.image.tag | default .Chart.AppVersion) "digest" .Values.image.digest) }}
{{- end }}

{{- define "chronos.worker.image" -}}
{{- $repo := .Values.workers.image.repository | default .Values.image.repository }}
{{- $tag := .Values.workers.image.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- $digest := .Values.workers.image.digest | default (ternary .Values.image.digest "" (empty .Values.workers.image.repository)) }}
{{- include "chronos.imageRef" (dict "repo" $repo "tag" $tag "digest" $digest) }}
{{- end }}

{{- define "chronos.tests.image" -}}
{{- $repo := .Values.tests.image.repository | default .Values.image.repository }}
{{- $tag := .Values.tests.image.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- $digest := ternary .Values.image.digest "" (empty .Values.tests.image.repository) }}
{{- include "chronos.imageRef" (dict "repo" $repo "tag" $tag "digest" $digest) }}
{{- end }}

{{/*
Worker pods' PodGroup name (Volcano gang scheduling).
*/}}
{{- define "chronos.worker.podGroup" -}}
{{- printf "%s-workers" (include "chronos.fullname" .) }}
{{- end }}

{{/*
Token Secret name and key.
*/}}
{{- define "chronos.auth.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-token" (include "chronos.fullname" .)) }}
{{- end }}

{{- define "chronos.auth.secretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey | default "token" }}{{ else }}token{{ end }}
{{- end }}

{{/*
TLS Secret name (required when TLS is on).
*/}}
{{- define "chronos.tls.secretName" -}}
{{- required "tls.existingSecret is required when tls.enabled is true" .Values.tls.existingSecret }}
{{- end }}

{{/*
In-cluster gRPC address of the coordinator.
*/}}
{{- define "chronos.coordinator.address" -}}
{{- printf "%s.%s.svc:%v" (include "chronos.coordinator.fullname" .) .Release.Namespace .Values.coordinator.service.grpcPort }}
{{- end }}
