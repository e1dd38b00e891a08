{{/* Chart name. */}}
{{- define "nazar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-wide name prefix (kube-prometheus-stack style). */}}
{{- define "nazar.fullname" -}}
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

{{/* Name of one component's objects: <fullname>-<component>. */}}
{{- define "nazar.componentName" -}}
{{- printf "%s-%s" (include "nazar.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nazar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels common to every object. */}}
{{- define "nazar.labels" -}}
helm.sh/chart: {{ include "nazar.chart" . }}
app.kubernetes.io/name: {{ include "nazar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nazar
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "ingest"). */}}
{{- define "nazar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nazar.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "nazar.componentLabels" -}}
{{ include "nazar.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Image reference; the tag defaults to the chart's appVersion. */}}
{{- define "nazar.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- $repo := .image.repository -}}
{{- if $registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" $registry) $repo }}{{ end -}}
{{- printf "%s:%s" $repo (.image.tag | default .root.Chart.AppVersion | toString) }}
{{- end }}

{{/* Name of the Secret holding the bootstrap admin key. */}}
{{- define "nazar.adminSecretName" -}}
{{- .Values.adminKey.existingSecret | default (printf "%s-admin" (include "nazar.fullname" .)) }}
{{- end }}

{{/* Name of the Secret holding the operator's API key. */}}
{{- define "nazar.operatorKeySecretName" -}}
{{- .Values.operator.apiKey.existingSecret | default (printf "%s-operator-key" (include "nazar.fullname" .)) }}
{{- end }}

{{/* Name of the Secret holding the agent's ingest-scoped key. */}}
{{- define "nazar.agentKeySecretName" -}}
{{- .Values.agent.apiKeySecret.name | default (printf "%s-agent-key" (include "nazar.fullname" .)) }}
{{- end }}

{{/* "name:key" of each key Secret the chart generates (none when existing Secrets are named). */}}
{{- define "nazar.generatedKeySecrets" -}}
{{- $out := list }}
{{- if not .Values.adminKey.existingSecret }}
{{- $out = append $out (printf "%s:%s" (include "nazar.adminSecretName" .) .Values.adminKey.key) }}
{{- end }}
{{- if and .Values.operator.enabled (not .Values.operator.apiKey.existingSecret) }}
{{- $out = append $out (printf "%s:%s" (include "nazar.operatorKeySecretName" .) .Values.operator.apiKey.key) }}
{{- end }}
{{- if and .Values.agent.enabled (not .Values.agent.apiKeySecret.name) }}
{{- $out = append $out (printf "%s:%s" (include "nazar.agentKeySecretName" .) .Values.agent.apiKeySecret.key) }}
{{- end }}
{{- join " " $out }}
{{- end }}

{{- define "nazar.hookConfigMapName" -}}
{{- include "nazar.componentName" (dict "root" . "component" "hooks") }}
{{- end }}

{{/* The kopf peering object the operator replicas elect a leader through; empty: one replica, no election. */}}
{{- define "nazar.operatorPeering" -}}
{{- if and .Values.operator.leaderElection.enabled (gt (int .Values.operator.replicas) 1) }}
{{- include "nazar.componentName" (dict "root" . "component" "operator") }}
{{- end }}
{{- end }}

{{/* "true" when the operator scales the analyzer (not KEDA, not by hand). */}}
{{- define "nazar.operatorScales" -}}
{{- if and .Values.operator.enabled .Values.operator.scaler.enabled .Values.analyzer.enabled (not .Values.analyzer.autoscaling.keda.enabled) }}true{{ end }}
{{- end }}

{{/*
Pod spec of a chart hook or test (ingest image, standard library Python).
Call with (dict "root" $ "name" "keys" "args" (list ...) "env" (list ...)
"resources" {...} "serviceAccountName" "..." "restartPolicy" "Never").
*/}}
{{- define "nazar.hookPodSpec" -}}
{{- $root := .root -}}
restartPolicy: {{ .restartPolicy | default "OnFailure" }}
{{- with .serviceAccountName }}
serviceAccountName: {{ . }}
{{- else }}
automountServiceAccountToken: false
{{- end }}
{{- with $root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.ingest.podSecurityContext | nindent 2 }}
containers:
  - name: {{ .name }}
    image: {{ include "nazar.image" (dict "root" $root "image" $root.Values.ingest.image) | quote }}
    imagePullPolicy: {{ $root.Values.ingest.image.pullPolicy }}
    command: [python]
    args:
      {{- toYaml .args | nindent 6 }}
    {{- with .env }}
    env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    resources:
      {{- toYaml (.resources | default dict) | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.ingest.securityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if .hookFiles }}
      - name: hook
        mountPath: /hook
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir: {}
  {{- with .hookFiles }}
  - name: hook
    configMap:
      name: {{ . }}
  {{- end }}
{{- end }}

{{- define "nazar.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- .Values.operator.serviceAccount.name | default (include "nazar.componentName" (dict "root" . "component" "operator")) }}
{{- else }}
{{- .Values.operator.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/* NAZAR_DATABASE_URL from its existing Secret. */}}
{{- define "nazar.databaseEnv" -}}
- name: NAZAR_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
{{- end }}

{{/* NAZAR_AMQP_URL from its existing Secret. */}}
{{- define "nazar.amqpEnv" -}}
- name: NAZAR_AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "rabbitmq.existingSecret is required" .Values.rabbitmq.existingSecret }}
      key: {{ .Values.rabbitmq.urlKey }}
{{- end }}

{{/* Settings every service shares. */}}
{{- define "nazar.commonEnv" -}}
{{ include "nazar.databaseEnv" . }}
{{ include "nazar.amqpEnv" . }}
- name: NAZAR_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: NAZAR_STORAGE_BACKEND
  value: {{ .Values.config.storageBackend | quote }}
- name: NAZAR_ANALYZER_PARTITIONS
  value: {{ .Values.config.analyzerPartitions | quote }}
{{- end }}

{{- define "nazar.ingestUrl" -}}
{{- printf "http://%s:%v" (include "nazar.componentName" (dict "root" . "component" "ingest")) .Values.ingest.service.port }}
{{- end }}

{{/*
A Deployment for one component. Call with a dict:
  root, component, values (the component's block), port, env (rendered YAML list),
  omitReplicas (bool).
*/}}
{{- define "nazar.deployment" -}}
{{- $v := .values -}}
{{- $sel := dict "root" .root "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "nazar.componentName" $sel }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "nazar.componentLabels" $sel | nindent 4 }}
spec:
  {{- if not .omitReplicas }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "nazar.selectorLabels" $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "nazar.selectorLabels" $sel | nindent 8 }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- with .serviceAccountName }}
      serviceAccountName: {{ . }}
      {{- else }}
      automountServiceAccountToken: false
      {{- end }}
      {{- with .root.Values.global.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .component }}
          image: {{ include "nazar.image" (dict "root" .root "image" $v.image) | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- with .args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
          env:
            {{- .env | nindent 12 }}
            {{- with .root.Values.global.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $v.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          livenessProbe:
            {{- toYaml $v.livenessProbe | nindent 12 }}
          readinessProbe:
            {{- toYaml $v.readinessProbe | nindent 12 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/* A ClusterIP Service for one component's "http" port. */}}
{{- define "nazar.service" -}}
{{- $sel := dict "root" .root "component" .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "nazar.componentName" $sel }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "nazar.componentLabels" $sel | nindent 4 }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    {{- include "nazar.selectorLabels" $sel | nindent 4 }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
      protocol: TCP
{{- end }}
