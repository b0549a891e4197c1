# shellcheck shell=bash
# knode-configz-shim, for `hack/conformance.sh --configz-shim` only: knode's
# kubelet serves no /configz yet, and e2e_node.test reads the kubelet's
# configuration from /configz (through the API server's node proxy) before any
# spec runs, so without it every spec is blocked. The shim listens where the
# API server expects the kubelet (the node address, port 10250, TLS with the
# kubelet's serving certificate, client certificates of our CA required),
# answers GET /configz with {"kubeletconfig": <the kubelet's config file as
# JSON>}, and forwards everything else (upgrades for exec/attach/port-forward
# included) to the kubelet, which then listens on 127.0.0.1:10250. It hides ONE
# missing feature and nothing else; runs with it are labelled as such.
# Source it after conformance-common.sh and control-plane-common.sh.

CONFIGZ_SHIM_BIN="$KNODE_TEST_IMAGES_DIR/bin/knode-configz-shim"
CONFIGZ_SHIM_MARKER="--shim-marker=$KNODE_CONFORMANCE_DIR"

write_configz_shim_source() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/main.go" <<'GO'
// knode-configz-shim serves /configz for a kubelet that has none and forwards
// every other request to that kubelet (see hack/lib/conformance-configz-shim.sh).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	listen := flag.String("listen", "", "address to serve on (host:port)")
	backend := flag.String("backend", "", "the kubelet's URL, e.g. https://127.0.0.1:10250")
	config := flag.String("kubelet-config", "", "the kubelet's KubeletConfiguration file (YAML)")
	cert := flag.String("tls-cert", "", "serving certificate (the kubelet's)")
	key := flag.String("tls-key", "", "serving key")
	ca := flag.String("client-ca", "", "CA of accepted client certificates, and of the kubelet's serving certificate")
	clientCert := flag.String("client-cert", "", "client certificate presented to the kubelet")
	clientKey := flag.String("client-key", "", "client key presented to the kubelet")
	backendName := flag.String("backend-server-name", "", "name to verify the kubelet's serving certificate against")
	flag.String("shim-marker", "", "ignored; identifies this process")
	flag.Parse()

	caPEM, err := os.ReadFile(*ca)
	if err != nil {
		log.Fatalf("read %s: %v", *ca, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatalf("no certificate in %s", *ca)
	}
	pair, err := tls.LoadX509KeyPair(*clientCert, *clientKey)
	if err != nil {
		log.Fatalf("client key pair: %v", err)
	}
	target, err := url.Parse(*backend)
	if err != nil {
		log.Fatalf("backend %q: %v", *backend, err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: *backendName}
	proxy.Transport = transport

	mux := http.NewServeMux()
	mux.HandleFunc("/configz", func(w http.ResponseWriter, r *http.Request) {
		raw, err := os.ReadFile(*config)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cfg, err := yaml.YAMLToJSON(raw)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]json.RawMessage{"kubeletconfig": cfg})
	})
	mux.Handle("/", proxy)

	server := &http.Server{
		Addr:    *listen,
		Handler: mux,
		TLSConfig: &tls.Config{
			ClientCAs:  pool,
			ClientAuth: tls.RequireAndVerifyClientCert,
			NextProtos: []string{"http/1.1"},
		},
	}
	log.Printf("serving /configz from %s on %s, the rest from %s", *config, *listen, *backend)
	log.Fatal(server.ListenAndServeTLS(*cert, *key))
}
GO
}

# build_configz_shim: in the test-images module of hack/build-test-images.sh.
build_configz_shim() {
    local mod="$KNODE_TEST_IMAGES_DIR/module" log="$KNODE_TEST_IMAGES_DIR/configz-shim-build.log"
    [[ -f $mod/go.mod ]] || bash "$KNODE_REPO_ROOT/hack/build-test-images.sh"
    write_configz_shim_source "$mod/cmd/knode-configz-shim"
    if [[ -x $CONFIGZ_SHIM_BIN && $CONFIGZ_SHIM_BIN -nt $mod/cmd/knode-configz-shim/main.go ]]; then
        return 0
    fi
    go_env_setup
    say "building knode-configz-shim (log: $log)"
    (cd "$mod" && CGO_ENABLED=0 go build -mod=mod -trimpath -o "$CONFIGZ_SHIM_BIN" ./cmd/knode-configz-shim) >"$log" 2>&1 ||
        { tail -n 20 "$log" >&2; die "building knode-configz-shim failed"; }
}

# configz_shim_up KUBELET_CONFIG: serve on the node address; the kubelet must
# listen on 127.0.0.1:10250.
configz_shim_up() {
    local cfg=$1 p=$KNODE_CP_PKI pid
    build_configz_shim
    if pid=$(proc_pid configz-shim "$CONFIGZ_SHIM_BIN" "$CONFIGZ_SHIM_MARKER"); then
        say "configz shim already running (pid $pid)"
        return 0
    fi
    proc_start configz-shim "$CONFIGZ_SHIM_BIN" "$CONFIGZ_SHIM_MARKER" \
        --listen="$KNODE_CP_NODE_IP:10250" \
        --backend=https://127.0.0.1:10250 \
        --backend-server-name="$KNODE_CP_NODE_IP" \
        --kubelet-config="$cfg" \
        --tls-cert="$p/kubelet-serving-$KNODE_CP_NODE_NAME.crt" \
        --tls-key="$p/kubelet-serving-$KNODE_CP_NODE_NAME.key" \
        --client-ca="$p/ca.crt" \
        --client-cert="$p/apiserver-kubelet-client.crt" \
        --client-key="$p/apiserver-kubelet-client.key"
}

configz_shim_down() {
    proc_stop configz-shim "$CONFIGZ_SHIM_BIN" "$CONFIGZ_SHIM_MARKER"
    proc_kill_strays configz-shim "$CONFIGZ_SHIM_BIN" "$CONFIGZ_SHIM_MARKER"
}
