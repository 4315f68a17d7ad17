{{/*
RBAC derived from .Values.config: nothing here is a wildcard.

informerd.rbacRules returns JSON {scope: {"<apiGroup>|<resource>": [verbs]}}, scope being a namespace or
"_cluster" (a ClusterRole). Granted:
  - get/list/watch on every reconciler primary, its `owns` and `watches`, and every handler resource,
    in the binding's namespace (binding.namespace, else config.namespace; null: cluster-wide);
  - each binding's `permissions` (resource -> verbs) there, or in rbac.permissionNamespaces[resource];
  - events.k8s.io events create/patch where reconcilers record Events (their namespace);
  - with leader election, coordination.k8s.io leases get/create/update and Events in the Lease's
    namespace (config.leaderElection.namespace, else the release's).
*/}}

{{/* Bare kinds the chart can place (group/plural); anything else is written group/version/plural. */}}
{{- define "informerd.knownKinds" -}}
{{- dict
  "Pod" "/pods" "ConfigMap" "/configmaps" "Secret" "/secrets" "Service" "/services"
  "ServiceAccount" "/serviceaccounts" "Endpoints" "/endpoints" "Event" "/events"
  "Namespace" "/namespaces" "Node" "/nodes" "PersistentVolume" "/persistentvolumes"
  "PersistentVolumeClaim" "/persistentvolumeclaims"
  "Deployment" "apps/deployments" "StatefulSet" "apps/statefulsets" "DaemonSet" "apps/daemonsets"
  "ReplicaSet" "apps/replicasets" "Job" "batch/jobs" "CronJob" "batch/cronjobs"
  "Ingress" "networking.k8s.io/ingresses" "NetworkPolicy" "networking.k8s.io/networkpolicies"
  "Lease" "coordination.k8s.io/leases" "HorizontalPodAutoscaler" "autoscaling/horizontalpodautoscalers"
  | toJson -}}
{{- end -}}

{{/* Built-in cluster-scoped resources (group/plural); rbac.clusterScopedResources adds custom ones. */}}
{{- define "informerd.clusterScoped" -}}
{{- list "/namespaces" "/nodes" "/persistentvolumes" "apiextensions.k8s.io/customresourcedefinitions"
  "rbac.authorization.k8s.io/clusterroles" "rbac.authorization.k8s.io/clusterrolebindings"
  "storage.k8s.io/storageclasses" "scheduling.k8s.io/priorityclasses"
  "admissionregistration.k8s.io/validatingwebhookconfigurations"
  "admissionregistration.k8s.io/mutatingwebhookconfigurations" | toJson -}}
{{- end -}}

{{/* A Kind's plural by the regular English rule Kubernetes applies to most kinds. */}}
{{- define "informerd.plural" -}}
{{- $lower := lower . -}}
{{- if eq $lower "endpoints" -}}endpoints
{{- else if regexMatch "(s|x|z|ch|sh)$" $lower -}}{{ $lower }}es
{{- else if regexMatch "[^aeiou]y$" $lower -}}{{ trimSuffix "y" $lower }}ies
{{- else -}}{{ $lower }}s
{{- end -}}
{{- end -}}

{{/* (dict "res" "<config resource>" "ctx" $) -> JSON {group, resource (with /subresource), clusterScoped} */}}
{{- define "informerd.parseResource" -}}
{{- $res := .res -}}
{{- $parts := splitList "/" $res -}}
{{- $n := len $parts -}}
{{- $group := "" -}}
{{- $name := "" -}}
{{- $sub := "" -}}
{{- if eq $n 1 -}}
{{- $known := include "informerd.knownKinds" . | fromJson -}}
{{- if not (hasKey $known $res) -}}
{{- fail (printf "informerd chart: cannot derive RBAC for %q: write it as group/version/plural (e.g. 'apps/v1/deployments'); bare kinds known to the chart: %s" $res (keys $known | sortAlpha | join ", ")) -}}
{{- end -}}
{{- $gp := splitList "/" (get $known $res) -}}
{{- $group = index $gp 0 -}}
{{- $name = index $gp 1 -}}
{{- else if eq $n 2 -}}
{{- $name = index $parts 1 -}}
{{- else if and (eq $n 3) (regexMatch "^v[0-9]+((alpha|beta)[0-9]+)?$" (index $parts 0)) -}}
{{- $name = index $parts 1 -}}
{{- $sub = index $parts 2 -}}
{{- else if eq $n 3 -}}
{{- $group = index $parts 0 -}}
{{- $name = index $parts 2 -}}
{{- else if eq $n 4 -}}
{{- $group = index $parts 0 -}}
{{- $name = index $parts 2 -}}
{{- $sub = index $parts 3 -}}
{{- else -}}
{{- fail (printf "informerd chart: %q is not a resource (group/version/plural[/subresource])" $res) -}}
{{- end -}}
{{- if regexMatch "^[A-Z]" $name -}}
{{- $name = include "informerd.plural" $name -}}
{{- end -}}
{{- $gp := printf "%s/%s" $group $name -}}
{{- $cluster := or (has $gp (include "informerd.clusterScoped" . | fromJsonArray)) (has $gp (.ctx.Values.rbac.clusterScopedResources | default list)) -}}
{{- dict "group" $group "resource" (ternary (printf "%s/%s" $name $sub) $name (ne $sub "")) "clusterScoped" $cluster | toJson -}}
{{- end -}}

{{/* (dict "rules" $rules "ns" "<namespace or empty>" "res" "<resource>" "verbs" (list ...) "ctx" $): add a grant. */}}
{{- define "informerd.grant" -}}
{{- $p := include "informerd.parseResource" (dict "res" .res "ctx" .ctx) | fromJson -}}
{{- $scope := "_cluster" -}}
{{- if and .ns (not $p.clusterScoped) -}}
{{- $scope = .ns -}}
{{- end -}}
{{- if not (hasKey .rules $scope) -}}
{{- $_ := set .rules $scope (dict) -}}
{{- end -}}
{{- $s := get .rules $scope -}}
{{- $key := printf "%s|%s" $p.group $p.resource -}}
{{- $have := get $s $key | default list -}}
{{- $_ := set $s $key (concat $have .verbs | uniq | sortAlpha) -}}
{{- end -}}

{{- define "informerd.rbacRules" -}}
{{- $cfg := .Values.config -}}
{{- $rules := dict -}}
{{- $read := list "get" "list" "watch" -}}
{{- $eventVerbs := list "create" "patch" -}}
{{- $permNs := .Values.rbac.permissionNamespaces | default dict -}}
{{- $top := $cfg.namespace | default "" -}}
{{- range $r := $cfg.reconcilers | default list -}}
{{- $ns := $r.namespace | default $top -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $ns "res" $r.resource "verbs" $read "ctx" $) -}}
{{- range $o := $r.owns | default list -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $ns "res" $o "verbs" $read "ctx" $) -}}
{{- end -}}
{{- range $w := $r.watches | default list -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" ($w.namespace | default $ns) "res" $w.resource "verbs" $read "ctx" $) -}}
{{- end -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $ns "res" "events.k8s.io/v1/events" "verbs" $eventVerbs "ctx" $) -}}
{{- range $res, $verbs := $r.permissions | default dict -}}
{{- range $t := (get $permNs $res | default (list $ns)) -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $t "res" $res "verbs" $verbs "ctx" $) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $h := $cfg.handlers | default list -}}
{{- $ns := $h.namespace | default $top -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $ns "res" $h.resource "verbs" $read "ctx" $) -}}
{{- range $res, $verbs := $h.permissions | default dict -}}
{{- range $t := (get $permNs $res | default (list $ns)) -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $t "res" $res "verbs" $verbs "ctx" $) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if include "informerd.leaderElection" . -}}
{{- $le := $cfg.leaderElection | default dict -}}
{{- $leaseNs := $le.namespace | default .Release.Namespace -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $leaseNs "res" "coordination.k8s.io/v1/leases" "verbs" (list "create" "get" "update") "ctx" $) -}}
{{- include "informerd.grant" (dict "rules" $rules "ns" $leaseNs "res" "events.k8s.io/v1/events" "verbs" $eventVerbs "ctx" $) -}}
{{- end -}}
{{- toJson $rules -}}
{{- end -}}
