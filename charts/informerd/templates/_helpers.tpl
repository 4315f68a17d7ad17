{{/* Names and labels (Helm's label conventions). */}}
{{- define "informerd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "informerd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "informerd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "informerd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "informerd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "informerd.labels" -}}
helm.sh/chart: {{ include "informerd.chart" . }}
{{ include "informerd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "informerd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "informerd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "informerd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Leader election is on with more than one (unsharded) replica, or when the config asks for it. */}}
{{- define "informerd.leaderElection" -}}
{{- $le := .Values.config.leaderElection | default dict -}}
{{- if or $le.enabled (and (not .Values.sharding.enabled) (gt (int .Values.replicaCount) 1)) -}}true{{- end -}}
{{- end -}}

{{/* The rendered daemon config (its checksum rolls the pods on a change). */}}
{{- define "informerd.configYaml" -}}
{{- toYaml .Values.config -}}
{{- end -}}
