# shellcheck shell=bash
# Certificates and kubeconfigs for hack/control-plane.sh, made with openssl.
# Source it after control-plane-common.sh. Everything lives in $KNODE_CP_PKI;
# a missing file is regenerated, an existing one kept (delete the directory to
# start over; a new CA regenerates every certificate signed by it).

# Bump when the certificate recipes change: everything is regenerated.
KNODE_CP_PKI_VERSION=2
CP_CERT_DAYS=3650

# pki_sign NAME CN O SAN_LIST USAGE [CA]
#   NAME      file base name in $KNODE_CP_PKI (NAME.crt, NAME.key)
#   CN, O     subject (O may be empty)
#   SAN_LIST  subjectAltName value, e.g. "IP:127.0.0.1,DNS:localhost" (may be empty)
#   USAGE     serverAuth, clientAuth or "serverAuth,clientAuth"
#   CA        base name of the signing CA (default: ca; front-proxy-ca for the aggregator)
pki_sign() {
    local name=$1 cn=$2 org=$3 sans=$4 usage=$5 ca=${6:-ca}
    local key="$KNODE_CP_PKI/$name.key" crt="$KNODE_CP_PKI/$name.crt"
    local subj="/CN=$cn" ext
    [[ -f $key && -f $crt ]] && return 0
    [[ -n $org ]] && subj="/O=$org$subj"
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -n $sans ]] && echo "subjectAltName=$sans"
    } >"$ext"
    openssl genrsa -out "$key" 2048 2>/dev/null
    openssl req -new -key "$key" -subj "$subj" -out "$KNODE_CP_PKI/$name.csr" 2>/dev/null
    openssl x509 -req -in "$KNODE_CP_PKI/$name.csr" -CA "$KNODE_CP_PKI/$ca.crt" -CAkey "$KNODE_CP_PKI/$ca.key" \
        -CAcreateserial -days "$CP_CERT_DAYS" -sha256 -extfile "$ext" -out "$crt" 2>/dev/null
    rm -f "$ext" "$KNODE_CP_PKI/$name.csr"
    chmod 0600 "$key"
    say "  generated $name.crt (CN=$cn${org:+, O=$org})"
}

# pki_ca NAME CN: a self-signed CA NAME.{crt,key}, made when missing; succeeds
# only when it made one (fails when the CA was already there).
pki_ca() {
    local name=$1 cn=$2
    [[ -f $KNODE_CP_PKI/$name.crt && -f $KNODE_CP_PKI/$name.key ]] && return 1
    openssl genrsa -out "$KNODE_CP_PKI/$name.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$KNODE_CP_PKI/$name.key" -subj "/CN=$cn" -days "$CP_CERT_DAYS" -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
        -out "$KNODE_CP_PKI/$name.crt"
    chmod 0600 "$KNODE_CP_PKI/$name.key"
    say "  generated $name.crt (CN=$cn)"
}

# A bootstrap token "id.secret" for TLS-bootstrap tests, kept across runs.
pki_bootstrap_token() {
    local f="$KNODE_CP_PKI/bootstrap-token"
    if [[ ! -s $f ]]; then
        printf '%s.%s\n' "$KNODE_CP_BOOTSTRAP_TOKEN_ID" \
            "$(tr -dc 'a-z0-9' </dev/urandom | head -c 16)" >"$f"
        chmod 0600 "$f"
        say "  generated bootstrap token $KNODE_CP_BOOTSTRAP_TOKEN_ID.*"
    fi
    cat "$f"
}

# write_kubeconfig FILE USER (client cert NAME.crt/NAME.key | token:TOKEN)
write_kubeconfig() {
    local file=$1 user=$2 cred=$3 auth
    local ca_data
    ca_data=$(base64 -w0 <"$KNODE_CP_PKI/ca.crt")
    if [[ $cred == token:* ]]; then
        auth="    token: ${cred#token:}"
    else
        auth="    client-certificate-data: $(base64 -w0 <"$KNODE_CP_PKI/$cred.crt")
    client-key-data: $(base64 -w0 <"$KNODE_CP_PKI/$cred.key")"
    fi
    cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: knode
  cluster:
    server: $KNODE_CP_APISERVER_URL
    certificate-authority-data: $ca_data
users:
- name: $user
  user:
$auth
contexts:
- name: $user@knode
  context:
    cluster: knode
    user: $user
current-context: $user@knode
EOF
    chmod 0600 "$file.tmp"
    mv "$file.tmp" "$file"
}

# Creates every certificate, key and kubeconfig that is missing.
ensure_pki() {
    local stamp="$KNODE_CP_PKI/.version" node=$KNODE_CP_NODE_NAME
    mkdir -p "$KNODE_CP_PKI"
    chmod 0700 "$KNODE_CP_PKI"
    if [[ ! -f $KNODE_CP_PKI/ca.crt || ! -f $KNODE_CP_PKI/ca.key ||
        "$(cat "$stamp" 2>/dev/null)" != "$KNODE_CP_PKI_VERSION" ]]; then
        say "generating a new CA in $KNODE_CP_PKI (every certificate is re-issued)"
        find "$KNODE_CP_PKI" -mindepth 1 -maxdepth 1 ! -name bootstrap-token -exec rm -f {} +
        openssl genrsa -out "$KNODE_CP_PKI/ca.key" 2048 2>/dev/null
        openssl req -x509 -new -key "$KNODE_CP_PKI/ca.key" -subj "/CN=knode-ca" -days "$CP_CERT_DAYS" -sha256 \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
            -out "$KNODE_CP_PKI/ca.crt"
        chmod 0600 "$KNODE_CP_PKI/ca.key"
        echo "$KNODE_CP_PKI_VERSION" >"$stamp"
    else
        say "PKI in $KNODE_CP_PKI: checking for missing files"
    fi

    pki_sign apiserver kube-apiserver "" \
        "IP:127.0.0.1,IP:$KNODE_CP_SERVICE_FIRST_IP,IP:$KNODE_CP_NODE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$KNODE_CP_CLUSTER_DOMAIN,DNS:localhost" \
        serverAuth
    pki_sign apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" clientAuth
    pki_sign admin kubernetes-admin system:masters "" clientAuth
    pki_sign controller-manager system:kube-controller-manager "" "" clientAuth
    pki_sign scheduler system:kube-scheduler "" "" clientAuth
    pki_sign "node-$node" "system:node:$node" system:nodes "" clientAuth
    # The kubelet's serving certificate, so the apiserver (which checks
    # kubelets against our CA) can reach logs/exec/port-forward.
    pki_sign "kubelet-serving-$node" "system:node:$node" system:nodes \
        "IP:$KNODE_CP_NODE_IP,IP:127.0.0.1,DNS:$node,DNS:localhost" serverAuth

    # API aggregation (metrics-server): a separate front-proxy CA, as kubeadm
    # has, and the client certificate the apiserver presents to extension
    # apiservers; they trust the CA for requestheader auth only. A new CA
    # re-issues the client certificate. Added later: older PKIs just gain files.
    if pki_ca front-proxy-ca front-proxy-ca; then
        rm -f "$KNODE_CP_PKI/front-proxy-client.crt" "$KNODE_CP_PKI/front-proxy-client.key"
    fi
    pki_sign front-proxy-client front-proxy-client "" "" clientAuth front-proxy-ca

    if [[ ! -f $KNODE_CP_PKI/sa.key || ! -f $KNODE_CP_PKI/sa.pub ]]; then
        openssl genrsa -out "$KNODE_CP_PKI/sa.key" 2048 2>/dev/null
        openssl rsa -in "$KNODE_CP_PKI/sa.key" -pubout -out "$KNODE_CP_PKI/sa.pub" 2>/dev/null
        chmod 0600 "$KNODE_CP_PKI/sa.key"
        say "  generated service-account key pair sa.key/sa.pub"
    fi

    local token
    token=$(pki_bootstrap_token)
    # Kubeconfigs are cheap: rewrite them so they always match the PKI and URL.
    write_kubeconfig "$KNODE_CP_ADMIN_KUBECONFIG" kubernetes-admin admin
    write_kubeconfig "$KNODE_CP_DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
    write_kubeconfig "$KNODE_CP_DIR/scheduler.kubeconfig" system:kube-scheduler scheduler
    write_kubeconfig "$KNODE_CP_NODE_KUBECONFIG" "system:node:$node" "node-$node"
    write_kubeconfig "$KNODE_CP_DIR/bootstrap.kubeconfig" "kubelet-bootstrap" "token:$token"
    say "kubeconfigs: $KNODE_CP_DIR/{admin,controller-manager,scheduler,node,bootstrap}.kubeconfig"
}
