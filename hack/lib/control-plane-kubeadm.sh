# What `kubeadm init` publishes for nodes to join (sourced by hack/control-plane.sh):
# - kube-public/cluster-info: a kubeconfig with the API server's address and the
#   cluster CA, readable anonymously; the controller-manager's bootstrapsigner adds
#   `jws-kubeconfig-<token id>` (a detached JWS signed with each signing token), which
#   `kubeadm join` and `knode join` check together with the CA's public-key hash;
# - kube-system/kubeadm-config (ClusterConfiguration) and kube-system/kubelet-config
#   (the KubeletConfiguration every joining node gets), readable by bootstrap tokens
#   and nodes; `get nodes` for bootstrap tokens (join refuses a Ready node of its name).
# The kubelet configuration suits this machine as the test kubelets' does: cgroupfs
# without QoS cgroups or allocatable enforcement (cgroup v1 host; kubeadm drops an
# empty enforceNodeAllocatable list, so `none` says it), swap allowed, no disk-based eviction or image
# GC (the disk is shared), no read-only port.

cp_kubeadm_kubelet_config() {
    cat <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: [none]
failCgroupV1: false
failSwapOn: false
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
authorization: {mode: Webhook}
clusterDNS: [$KNODE_CP_CLUSTER_DNS]
clusterDomain: $KNODE_CP_CLUSTER_DOMAIN
makeIPTablesUtilChains: false
rotateCertificates: true
evictionHard: {memory.available: 100Mi, nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
}

cp_kubeadm_cluster_configuration() {
    cat <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: knode
kubernetesVersion: v$KNODE_K8S_VERSION
controlPlaneEndpoint: $KNODE_CP_NODE_IP:$KNODE_CP_APISERVER_PORT
certificatesDir: /etc/kubernetes/pki
networking:
  dnsDomain: $KNODE_CP_CLUSTER_DOMAIN
  serviceSubnet: $KNODE_CP_SERVICE_CIDR
  podSubnet: $KNODE_CP_CLUSTER_CIDR
YAML
}

# Indents stdin by $1 spaces (block scalars inside the manifests below).
cp_indent() { sed "s/^/$(printf '%*s' "$1" '')/"; }

cp_apply_kubeadm() {
    local ca
    ca=$(base64 -w0 "$KNODE_CP_PKI/ca.crt")
    kc apply -f - >/dev/null <<MANIFESTS
apiVersion: v1
kind: ConfigMap
metadata: {name: cluster-info, namespace: kube-public}
data:
  kubeconfig: |
    apiVersion: v1
    kind: Config
    clusters:
    - name: ""
      cluster:
        server: https://$KNODE_CP_NODE_IP:$KNODE_CP_APISERVER_PORT
        certificate-authority-data: $ca
    contexts: []
    users: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "kubeadm:bootstrap-signer-clusterinfo", namespace: kube-public}
rules: [{apiGroups: [""], resources: [configmaps], resourceNames: [cluster-info], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "kubeadm:bootstrap-signer-clusterinfo", namespace: kube-public}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "kubeadm:bootstrap-signer-clusterinfo"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:anonymous"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kubeadm-config, namespace: kube-system}
data:
  ClusterConfiguration: |
$(cp_kubeadm_cluster_configuration | cp_indent 4)
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kubelet-config, namespace: kube-system}
data:
  kubelet: |
$(cp_kubeadm_kubelet_config | cp_indent 4)
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "kubeadm:nodes-kubeadm-config", namespace: kube-system}
rules: [{apiGroups: [""], resources: [configmaps], resourceNames: [kubeadm-config], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "kubeadm:nodes-kubeadm-config", namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "kubeadm:nodes-kubeadm-config"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:bootstrappers"}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "kubeadm:kubelet-config", namespace: kube-system}
rules: [{apiGroups: [""], resources: [configmaps], resourceNames: [kubelet-config], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "kubeadm:kubelet-config", namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "kubeadm:kubelet-config"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:bootstrappers"}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "kubeadm:get-nodes"}
rules: [{apiGroups: [""], resources: [nodes], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "kubeadm:get-nodes"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "kubeadm:get-nodes"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:bootstrappers"}]
MANIFESTS
    say "kubeadm's cluster-info, kubeadm-config and kubelet-config published"
}
