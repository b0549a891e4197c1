//! End-to-end, cluster mode: image pulls against real registries on loopback. The test starts
//! two of Debian's `docker-registry`, one open and one behind htpasswd authentication, pushes
//! the busybox image to both with `skopeo`, and points containerd at them (a `hosts.toml` each,
//! removed afterwards). Pods go through the API server, secrets are made with
//! `kubectl create secret docker-registry`:
//! - the open registry, `imagePullPolicy: Always`: Running, upstream's `Pulled` event with the
//!   pull time and image size, and the pull left out of the pod's startup SLI;
//! - the private registry without credentials: `ErrImagePull`/`ImagePullBackOff`, the pull's
//!   error kept in the back-off message;
//! - with the secret in `imagePullSecrets`, and through a service account's `imagePullSecrets`
//!   (added by the API server's admission): Running;
//! - with a wrong password: not Running, the registry's refusal in the message;
//! - `Never` for an image the node lacks: `ErrImageNeverPull`; an invalid name:
//!   `InvalidImageName`;
//! - an image credential provider plugin (a shell script written here, matching one path of
//!   the private registry) gives the credentials for two pods without secrets; its answer is
//!   cached (`cacheKeyType: Image`), so it runs once.

mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, wait_for};
use k8s_openapi::api::core::v1::Pod;

const USER: &str = "puller";
const PASSWORD: &str = "s3cret-pull";

/// The audience of the tokens the service-account provider is given.
const SA_AUDIENCE: &str = "knode-test-registry";

use e2e::free_port;

/// One `docker-registry` on loopback with its containerd `hosts.toml`; both go on drop.
struct Registry {
    child: Child,
    addr: String,
    hosts_dir: PathBuf,
}

impl Registry {
    fn start(dir: &Path, name: &str, htpasswd: Option<&Path>) -> Registry {
        let addr = format!("127.0.0.1:{}", free_port());
        let storage = dir.join(format!("{name}-storage"));
        std::fs::create_dir_all(&storage).unwrap();
        let auth = htpasswd.map(|f| format!("auth:\n  htpasswd:\n    realm: knode-test\n    path: {}\n", f.display())).unwrap_or_default();
        let config = dir.join(format!("{name}.yml"));
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let hosts_dir =
            Path::new(&std::env::var("KNODE_REGISTRY_HOSTS_DIR").unwrap_or_else(|_| "/etc/knode/containerd/certs.d".into())).join(&addr);
        std::fs::create_dir_all(&hosts_dir).unwrap();
        std::fs::write(
            hosts_dir.join("hosts.toml"),
            format!("server = \"http://{addr}\"\n\n[host.\"http://{addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
        )
        .unwrap();
        let registry = Registry { child, addr, hosts_dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.addr).is_ok() {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry {name} did not come up on {}", registry.addr);
    }

    /// Pushes the node environment's busybox image as `<addr>/<path>`.
    fn push(&self, path: &str, creds: Option<&str>) -> String {
        self.push_archive("busybox", path, creds)
    }

    /// Pushes the node environment's `<archive>.tar` (busybox, pause) as `<addr>/<path>`.
    fn push_archive(&self, archive: &str, path: &str, creds: Option<&str>) -> String {
        let cache = std::env::var("KNODE_IMAGE_CACHE").unwrap_or_else(|_| "/var/cache/knode/images".into());
        let image = format!("{}/{path}", self.addr);
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some(c) = creds {
            cmd.args(["--dest-creds", c]);
        }
        let out = cmd.arg(format!("oci-archive:{cache}/{archive}.tar")).arg(format!("docker://{image}")).output().expect("run skopeo");
        assert!(out.status.success(), "skopeo copy to {image}: {}", String::from_utf8_lossy(&out.stderr));
        image
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.hosts_dir);
    }
}

/// A credential provider plugin at `path` that appends each request to `calls` and answers
/// the private registry's credentials for `location`, cached an hour per image.
fn write_plugin(path: &Path, calls: &Path, location: &str) {
    let script = format!(
        "#!/bin/sh\ncat >> {calls}\necho >> {calls}\necho '{{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"cacheKeyType\":\"Image\",\"cacheDuration\":\"1h\",\"auth\":{{\"{location}\":{{\"username\":\"{USER}\",\"password\":\"{PASSWORD}\"}}}}}}'\n",
        calls = calls.display()
    );
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn pod_yaml(name: &str, image: &str, policy: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 1\n{extra}  containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: {policy}\n    command: [\"sleep\", \"3600\"]\n"
    )
}

/// The waiting reason and message of the pod's container, once it has one.
async fn waiting(name: &str, reasons: &[&str]) -> (String, String) {
    wait_for(&format!("pod {name} waiting with one of {reasons:?}"), Duration::from_secs(90), || async {
        let p: Pod = kubectl_json(&["get", "pod", name])?;
        let w = p.status?.container_statuses?.first()?.state.clone()?.waiting?;
        let reason = w.reason.unwrap_or_default();
        reasons.contains(&reason.as_str()).then(|| (reason, w.message.unwrap_or_default()))
    })
    .await
}

fn events_of(name: &str) -> String {
    kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "custom-columns=R:.reason,M:.message",
        "--no-headers",
    ])
    .1
}

/// Removes what the test pulled into the shared containerd.
struct PulledImages(Vec<String>);

impl Drop for PulledImages {
    fn drop(&mut self) {
        let sock = e2e::containerd_socket();
        for image in &self.0 {
            let _ = Command::new("ctr")
                .args(["-a", &sock, "-n", "k8s.io", "images", "rm", image])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn pull_policies_credentials_and_reasons() {
    control_plane_ready().await;
    let node = TestNode::new();
    let dir = node.dir.path().to_path_buf();
    let htpasswd = dir.join("htpasswd");
    let out = Command::new("htpasswd").args(["-Bbc", htpasswd.to_str().unwrap(), USER, PASSWORD]).output().expect("run htpasswd");
    assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
    let open = Registry::start(&dir, "open", None);
    let private = Registry::start(&dir, "private", Some(&htpasswd));
    let public_image = open.push("knode/public:1.0", None);
    let private_image = private.push("knode/private:1.0", Some(&format!("{USER}:{PASSWORD}")));
    let plugin_image = private.push("knode/viaplugin:1.0", Some(&format!("{USER}:{PASSWORD}")));
    let sa_image = private.push("knode/viasa:1.0", Some(&format!("{USER}:{PASSWORD}")));
    let _cleanup = PulledImages(vec![public_image.clone(), private_image.clone(), plugin_image.clone(), sa_image.clone()]);

    // The credential provider plugin: records each request, answers the private registry's
    // credentials for the viaplugin path.
    let bin = dir.join("plugins");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("plugin-calls");
    write_plugin(&bin.join("knode-test-provider"), &calls, &format!("{}/knode/viaplugin", private.addr));
    // A service-account provider (tokenAttributes): given the pod's token for its audience and
    // the service account's role annotation, it answers for the viasa path.
    let sa_calls = dir.join("sa-plugin-calls");
    write_plugin(&bin.join("knode-sa-provider"), &sa_calls, &format!("{}/knode/viasa", private.addr));
    let provider_config = dir.join("credential-provider.yaml");
    std::fs::write(
        &provider_config,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: knode-test-provider\n  matchImages: [\"{addr}/knode/viaplugin\"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n- name: knode-sa-provider\n  matchImages: [\"{addr}/knode/viasa\"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  tokenAttributes:\n    serviceAccountTokenAudience: {SA_AUDIENCE}\n    cacheType: ServiceAccount\n    requireServiceAccount: true\n    requiredServiceAccountAnnotationKeys: [knode.test/registry-role]\n",
            addr = private.addr
        ),
    )
    .unwrap();
    // Nodes may ask for tokens of this audience (upstream's ServiceAccountNodeAudienceRestriction).
    apply(
        &node,
        "sa-audience",
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: knode-test-registry-audience}}\nrules:\n- apiGroups: [\"\"]\n  resources: [{SA_AUDIENCE}]\n  verbs: [request-serviceaccounts-token-audience]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: knode-test-registry-audience}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: knode-test-registry-audience}}\nsubjects:\n- {{apiGroup: rbac.authorization.k8s.io, kind: Group, name: \"system:nodes\"}}\n"
        ),
    );

    secure_config(&node);
    let plugin_flags = [
        format!("--image-credential-provider-config={}", provider_config.display()),
        format!("--image-credential-provider-bin-dir={}", bin.display()),
    ];
    let kubelet = start_cluster_kubelet_with(&node, &[&plugin_flags[0], &plugin_flags[1]]).await;
    wait_node_ready(Duration::from_secs(60)).await;
    let pods = [
        "img-public",
        "img-nocreds",
        "img-secret",
        "img-sa",
        "img-wrong",
        "img-never",
        "img-invalid",
        "img-plugin-1",
        "img-plugin-2",
        "img-sa-token",
        "img-sa-unannotated",
    ];
    for p in pods {
        kubectl(&["delete", "pod", p, "--ignore-not-found", "--grace-period=0", "--force"]);
    }
    kubectl(&["delete", "secret", "regcred", "wrongcred", "--ignore-not-found"]);
    kubectl(&["delete", "serviceaccount", "img-puller", "token-puller", "--ignore-not-found"]);
    let server = format!("--docker-server={}", private.addr);
    for (name, password) in [("regcred", PASSWORD), ("wrongcred", "nope")] {
        let (ok, _, err) = kubectl(&[
            "create",
            "secret",
            "docker-registry",
            name,
            &server,
            &format!("--docker-username={USER}"),
            &format!("--docker-password={password}"),
        ]);
        assert!(ok, "create secret {name}: {err}");
    }
    apply(
        &node,
        "sa",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: img-puller, namespace: default}\nimagePullSecrets: [{name: regcred}]\n",
    );

    // The open registry, always pulled.
    apply(&node, "img-public", &pod_yaml("img-public", &public_image, "Always", ""));
    pod_running("img-public", Duration::from_secs(90)).await;
    let events = events_of("img-public");
    assert!(
        events.lines().any(|l| l.starts_with("Pulled")
            && l.contains(&format!("Successfully pulled image \"{public_image}\" in "))
            && l.contains(" including waiting). Image size: ")),
        "{events}"
    );
    // The startup SLI leaves the pull out: the pod's line names a pulling time above zero.
    let startup = wait_for("the pod's startup duration logged", Duration::from_secs(30), || async {
        kubelet
            .log_text()
            .lines()
            .find(|l| l.contains("observed pod startup duration") && l.contains("pod=default/img-public"))
            .map(str::to_string)
    })
    .await;
    assert!(startup.contains("total_images_pulling_time=") && !startup.contains("total_images_pulling_time=0ns"), "{startup}");

    // The private registry without credentials: refused, then backing off with the error.
    apply(&node, "img-nocreds", &pod_yaml("img-nocreds", &private_image, "Always", ""));
    // ErrImagePull lasts until the next sync (a PLEG event can bring it within milliseconds,
    // and the API may only ever show ImagePullBackOff, which carries the pull's error).
    let (reason, message) = waiting("img-nocreds", &["ErrImagePull", "ImagePullBackOff"]).await;
    assert!(message.contains("authoriz"), "{reason}: {message}");
    let (_, message) = waiting("img-nocreds", &["ImagePullBackOff"]).await;
    assert!(message.starts_with(&format!("Back-off pulling image \"{private_image}\": ErrImagePull: ")), "{message}");

    // With the secret, directly and through the service account.
    apply(&node, "img-secret", &pod_yaml("img-secret", &private_image, "Always", "  imagePullSecrets: [{name: regcred}]\n"));
    apply(&node, "img-sa", &pod_yaml("img-sa", &private_image, "Always", "  serviceAccountName: img-puller\n"));
    pod_running("img-secret", Duration::from_secs(90)).await;
    let sa_pod = pod_running("img-sa", Duration::from_secs(90)).await;
    assert_eq!(sa_pod.spec.unwrap().image_pull_secrets.unwrap()[0].name, "regcred", "admission added the service account's secret");

    // A wrong password, a missing secret: refused, and the missing secret named in an event.
    apply(
        &node,
        "img-wrong",
        &pod_yaml("img-wrong", &private_image, "Always", "  imagePullSecrets: [{name: wrongcred}, {name: no-such-secret}]\n"),
    );
    let (_, message) = waiting("img-wrong", &["ErrImagePull", "ImagePullBackOff"]).await;
    assert!(message.contains("authoriz") || message.contains("401"), "{message}");
    wait_for("FailedToRetrieveImagePullSecret event", Duration::from_secs(30), || async {
        events_of("img-wrong")
            .lines()
            .any(|l| l.starts_with("FailedToRetrieveImagePullSecret") && l.contains("(no-such-secret)"))
            .then_some(())
    })
    .await;

    // Never, and an invalid name.
    apply(&node, "img-never", &pod_yaml("img-never", &format!("{}/knode/absent:1.0", open.addr), "Never", ""));
    let (_, message) = waiting("img-never", &["ErrImageNeverPull"]).await;
    assert!(message.ends_with("is not present with pull policy of Never"), "{message}");
    apply(&node, "img-invalid", &pod_yaml("img-invalid", "Bad_Image:UPPER", "IfNotPresent", ""));
    waiting("img-invalid", &["InvalidImageName"]).await;

    // The plugin's credentials, asked once for two pods.
    apply(&node, "img-plugin-1", &pod_yaml("img-plugin-1", &plugin_image, "Always", ""));
    pod_running("img-plugin-1", Duration::from_secs(90)).await;
    apply(&node, "img-plugin-2", &pod_yaml("img-plugin-2", &plugin_image, "Always", ""));
    pod_running("img-plugin-2", Duration::from_secs(90)).await;
    let asked = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(asked.lines().count(), 1, "cached after the first answer: {asked}");
    assert!(asked.contains(&format!("\"image\":\"{}/knode/viaplugin\"", private.addr)), "{asked}");

    // The service-account provider: given a token the API server accepts for the audience,
    // bound to the pod; skipped for a service account without the required annotation.
    apply(
        &node,
        "token-puller",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: token-puller, namespace: default, annotations: {knode.test/registry-role: reader, knode.test/other: x}}\n",
    );
    apply(&node, "img-sa-token", &pod_yaml("img-sa-token", &sa_image, "Always", "  serviceAccountName: token-puller\n"));
    pod_running("img-sa-token", Duration::from_secs(90)).await;
    let asked = std::fs::read_to_string(&sa_calls).unwrap();
    assert_eq!(asked.lines().count(), 1, "{asked}");
    let request: serde_json::Value = serde_json::from_str(asked.lines().next().unwrap()).unwrap();
    assert_eq!(
        request["serviceAccountAnnotations"],
        serde_json::json!({"knode.test/registry-role": "reader"}),
        "only the named annotation: {asked}"
    );
    let token = request["serviceAccountToken"].as_str().expect("a token in the request").to_string();
    let review_file = dir.join("token-review.json");
    std::fs::write(&review_file, serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": [SA_AUDIENCE]}}).to_string()).unwrap();
    let review: serde_json::Value = kubectl_json(&["create", "-f", review_file.to_str().unwrap()]).expect("kubectl create TokenReview");
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(review["status"]["user"]["username"], "system:serviceaccount:default:token-puller", "{review}");
    assert_eq!(review["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"][0], "img-sa-token", "bound to the pod: {review}");
    let account: serde_json::Value = kubectl_json(&["get", "serviceaccount", "token-puller"]).expect("the service account");
    let (_, record) = pull_record(&node, "knode/viasa").expect("a pull record of the image");
    let recorded = format!(
        "\"kubernetesServiceAccounts\":[{{\"uid\":{},\"namespace\":\"default\",\"name\":\"token-puller\"}}]",
        account["metadata"]["uid"]
    );
    assert!(record.contains(&recorded), "the pull is recorded with the service account: {record}");
    apply(&node, "img-sa-unannotated", &pod_yaml("img-sa-unannotated", &sa_image, "Always", "  serviceAccountName: default\n"));
    let (_, message) = waiting("img-sa-unannotated", &["ErrImagePull", "ImagePullBackOff"]).await;
    assert!(message.contains("authoriz") || message.contains("401"), "the plugin was skipped: {message}");
    assert_eq!(std::fs::read_to_string(&sa_calls).unwrap().lines().count(), 1, "not asked for a service account without the annotation");

    for p in pods {
        kubectl(&["delete", "pod", p, "--grace-period=0", "--force"]);
    }
    kubectl(&["delete", "secret", "regcred", "wrongcred"]);
    kubectl(&["delete", "serviceaccount", "img-puller", "token-puller"]);
    kubectl(&["delete", "clusterrole,clusterrolebinding", "knode-test-registry-audience"]);
    teardown(kubelet).await;
}

fn pause_pod_yaml(name: &str, image: &str, policy: &str, extra: &str) -> String {
    pod_yaml(name, image, policy, extra).replace("    command: [\"sleep\", \"3600\"]\n", "")
}

/// The pull record under the node's root naming `needle`: (path, text).
fn pull_record(node: &TestNode, needle: &str) -> Option<(PathBuf, String)> {
    std::fs::read_dir(node.root().join("image_manager/pulled")).ok()?.flatten().map(|e| e.path()).find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        text.contains(needle).then_some((p, text))
    })
}

/// KubeletEnsureSecretPulledImages (on by default since 1.35, policy
/// NeverVerifyPreloadedImages): an image a pod pulled with a secret is not handed to a pod
/// without those credentials, whatever its pull policy; a secret with the same credentials
/// is; preloaded images are not verified. The records are upstream's files.
#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn images_pulled_with_a_secret_stay_with_its_credentials() {
    control_plane_ready().await;
    let node = TestNode::new();
    let dir = node.dir.path().to_path_buf();
    let htpasswd = dir.join("htpasswd");
    let out = Command::new("htpasswd").args(["-Bbc", htpasswd.to_str().unwrap(), USER, PASSWORD]).output().expect("run htpasswd");
    assert!(out.status.success());
    let private = Registry::start(&dir, "private", Some(&htpasswd));
    // The pause image (its own entrypoint): not busybox, whose image ID the preloaded image
    // below must not share — a record is per image ID, whatever name it was pulled under.
    let image = private.push_archive("pause", "knode/ensured:1.0", Some(&format!("{USER}:{PASSWORD}")));
    let _cleanup = PulledImages(vec![image.clone()]);
    secure_config(&node);
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;
    let pods = ["ens-first", "ens-nosecret", "ens-never", "ens-copy", "ens-preloaded"];
    for p in pods {
        kubectl(&["delete", "pod", p, "--ignore-not-found", "--grace-period=0", "--force"]);
    }
    kubectl(&["delete", "secret", "regcred", "copycred", "--ignore-not-found"]);
    let server = format!("--docker-server={}", private.addr);
    for name in ["regcred", "copycred"] {
        let (ok, _, err) = kubectl(&[
            "create",
            "secret",
            "docker-registry",
            name,
            &server,
            &format!("--docker-username={USER}"),
            &format!("--docker-password={PASSWORD}"),
        ]);
        assert!(ok, "create secret {name}: {err}");
    }

    // Pulled with regcred: recorded with the secret's coordinates and credential hash.
    apply(&node, "ens-first", &pause_pod_yaml("ens-first", &image, "IfNotPresent", "  imagePullSecrets: [{name: regcred}]\n"));
    pod_running("ens-first", Duration::from_secs(90)).await;
    let (path, record) = wait_for("the pull record", Duration::from_secs(10), || async { pull_record(&node, "knode/ensured") }).await;
    assert!(path.file_name().unwrap().to_str().unwrap().starts_with("sha256-"), "{}", path.display());
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions()) & 0o777, 0o600);
    assert!(record.starts_with("{\"kind\":\"ImagePulledRecord\",\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\""), "{record}");
    let secret_uid = kubectl(&["get", "secret", "regcred", "-o", "jsonpath={.metadata.uid}"]).1;
    assert!(
        record.contains(&format!("{{\"uid\":\"{secret_uid}\",\"namespace\":\"default\",\"name\":\"regcred\",\"credentialHash\":\"")),
        "{record}"
    );

    // No secret: IfNotPresent must pull, and the anonymous pull is refused; Never answers as
    // for an absent image.
    apply(&node, "ens-nosecret", &pause_pod_yaml("ens-nosecret", &image, "IfNotPresent", ""));
    let (reason, message) = waiting("ens-nosecret", &["ErrImagePull", "ImagePullBackOff"]).await;
    assert!(message.contains("authoriz") || message.contains("401") || reason == "ImagePullBackOff", "{reason}: {message}");
    apply(&node, "ens-never", &pause_pod_yaml("ens-never", &image, "Never", ""));
    let (_, message) = waiting("ens-never", &["ErrImageNeverPull"]).await;
    assert_eq!(message, format!("Container image \"{image}\" is not present with pull policy of Never"));

    // Another secret with the same credentials: allowed without a pull, and recorded.
    apply(&node, "ens-copy", &pause_pod_yaml("ens-copy", &image, "Never", "  imagePullSecrets: [{name: copycred}]\n"));
    pod_running("ens-copy", Duration::from_secs(60)).await;
    assert!(
        events_of("ens-copy").contains(&format!("Container image \"{image}\" already present on machine and can be accessed by the pod")),
        "{}",
        events_of("ens-copy")
    );
    let (_, record) = pull_record(&node, "knode/ensured").unwrap();
    assert!(record.contains("\"name\":\"copycred\"") && record.contains("\"name\":\"regcred\""), "{record}");

    // A preloaded image (the node environment's busybox, not pulled by this kubelet).
    apply(&node, "ens-preloaded", &pod_yaml("ens-preloaded", &e2e::busybox_image(), "Never", ""));
    pod_running("ens-preloaded", Duration::from_secs(60)).await;

    for p in pods {
        kubectl(&["delete", "pod", p, "--grace-period=0", "--force"]);
    }
    kubectl(&["delete", "secret", "regcred", "copycred"]);
    teardown(kubelet).await;
}
