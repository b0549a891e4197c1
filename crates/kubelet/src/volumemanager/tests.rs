//! Volume manager against the fake API (`test_support::FakeVolumeApi`), a recording mounter and
//! a settable clock, in a temp root.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource, ObjectFieldSelector, PodSpec,
    ProjectedVolumeSource, SecretVolumeSource, ServiceAccountTokenProjection, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use test_support::{FakeVolumeApi, ManualClock};

use super::*;

#[derive(Default)]
struct RecordingMounter {
    mounted: Mutex<BTreeSet<PathBuf>>,
    log: Mutex<Vec<(PathBuf, Option<u64>)>>,
}

impl Mounter for RecordingMounter {
    fn is_mount_point(&self, path: &Path) -> io::Result<bool> {
        Ok(self.mounted.lock().unwrap().contains(path))
    }
    fn mount_tmpfs(&self, path: &Path, size: Option<u64>) -> io::Result<()> {
        self.mounted.lock().unwrap().insert(path.to_path_buf());
        self.log.lock().unwrap().push((path.to_path_buf(), size));
        Ok(())
    }
    fn unmount(&self, path: &Path) -> io::Result<()> {
        self.mounted.lock().unwrap().remove(path);
        Ok(())
    }
}

const T0: Duration = Duration::from_secs(1_800_000_000);

fn setup(api: Option<FakeVolumeApi>) -> (tempfile::TempDir, VolumeManager, Arc<RecordingMounter>, Arc<ManualClock>) {
    let root = tempfile::tempdir().unwrap();
    let mounter = Arc::new(RecordingMounter::default());
    let clock = Arc::new(ManualClock::at(SystemTime::UNIX_EPOCH + T0));
    let api = api.map(|a| Arc::new(a) as Arc<dyn VolumeApi>);
    let vm = VolumeManager::new(root.path(), api, mounter.clone(), clock.clone());
    (root, vm, mounter, clock)
}

fn pod(volumes: Vec<Volume>) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some("web".into());
    p.metadata.namespace = Some("prod".into());
    p.metadata.uid = Some("uid-1".into());
    p.spec = Some(PodSpec { volumes: Some(volumes), service_account_name: Some("builder".into()), ..Default::default() });
    p
}

fn secret_vol(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource { secret_name: Some(secret.into()), ..Default::default() }),
        ..Default::default()
    }
}

fn downward_vol() -> Volume {
    let item = DownwardAPIVolumeFile {
        path: "name".into(),
        field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), api_version: None }),
        ..Default::default()
    };
    Volume {
        name: "info".into(),
        downward_api: Some(DownwardAPIVolumeSource { items: Some(vec![item]), default_mode: None, ..Default::default() }),
        ..Default::default()
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[tokio::test]
async fn standalone_downward_api_and_memory_empty_dir_work_secrets_fail_clearly() {
    let (_root, vm, mounter, _) = setup(None);
    let mem = Volume {
        name: "cache".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity("64Mi".into())),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = pod(vec![downward_vol(), mem]);
    let paths = vm.mount_pod_volumes(&p).await.unwrap();
    assert!(paths["info"].ends_with("pods/uid-1/volumes/kubernetes.io~downward-api/info"));
    assert_eq!(read(&paths["info"].join("name")), "web");
    let log = mounter.log.lock().unwrap().clone();
    assert!(log.contains(&(paths["cache"].clone(), Some(64 << 20))), "{log:?}");
    assert!(log.contains(&(paths["info"].clone(), None)), "downwardAPI is memory-backed: {log:?}");
    // Volume directories are 0777, as upstream's emptyDir: a non-root container can use them.
    use std::os::unix::fs::PermissionsExt;
    for v in ["cache", "info"] {
        assert_eq!(std::fs::metadata(&paths[v]).unwrap().permissions().mode() & 0o7777, 0o777, "{v}");
    }

    let err = vm.mount_pod_volumes(&pod(vec![secret_vol("creds", "db")])).await.unwrap_err().to_string();
    assert_eq!(err, format!("MountVolume.SetUp failed for volume \"creds\" : secret \"db\": {NO_API_SERVER}"));
    let mut optional = secret_vol("creds", "db");
    optional.secret.as_mut().unwrap().optional = Some(true);
    vm.mount_pod_volumes(&pod(vec![optional])).await.unwrap();

    let bad = Volume {
        name: "m".into(),
        empty_dir: Some(EmptyDirVolumeSource { medium: Some("HugePages".into()), size_limit: None, ..Default::default() }),
        ..Default::default()
    };
    let err = vm.mount_pod_volumes(&pod(vec![bad])).await.unwrap_err().to_string();
    assert!(err.contains("volume \"m\"") && err.contains("\"HugePages\" is not supported"), "{err}");
}

#[tokio::test]
async fn missing_secret_fails_then_recovers_and_updates_reach_the_files() {
    let api = FakeVolumeApi::new();
    let (root, vm, mounter, _) = setup(Some(api.clone()));
    let cm = Volume {
        name: "conf".into(),
        config_map: Some(ConfigMapVolumeSource { name: "app".into(), ..Default::default() }),
        ..Default::default()
    };
    let p = pod(vec![secret_vol("creds", "db"), cm]);

    let err = vm.mount_pod_volumes(&p).await.unwrap_err().to_string();
    assert_eq!(err, "MountVolume.SetUp failed for volume \"creds\" : secret \"db\" not found");
    api.put_secret("prod", "db", &[("password", "s3cret")]);
    let err = vm.mount_pod_volumes(&p).await.unwrap_err().to_string();
    assert_eq!(err, "MountVolume.SetUp failed for volume \"conf\" : configmap \"app\" not found");
    api.put_config_map("prod", "app", &[("app.conf", "v=1")]);

    let paths = vm.mount_pod_volumes(&p).await.unwrap();
    let secret_dir = root.path().join("pods/uid-1/volumes/kubernetes.io~secret/creds");
    assert_eq!(paths["creds"], secret_dir);
    assert_eq!(read(&secret_dir.join("password")), "s3cret");
    assert_eq!(read(&paths["conf"].join("app.conf")), "v=1");
    let mounted: Vec<PathBuf> = mounter.log.lock().unwrap().iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(mounted, vec![secret_dir.clone()], "secret on tmpfs once, configMap on disk");

    api.put_config_map("prod", "app", &[("app.conf", "v=2")]);
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(read(&paths["conf"].join("app.conf")), "v=2");
    assert_eq!(mounter.log.lock().unwrap().len(), 1, "no second mount on refresh");

    // API trouble names the object.
    api.fail_with(Some("etcd down"));
    let err = vm.mount_pod_volumes(&p).await.unwrap_err();
    assert!(
        matches!(&err, VolumeError::SetUp { volume, reason: SetUpError::Fetch { kind: "secret", namespace, name, .. } } if volume == "creds" && namespace == "prod" && name == "db"),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("couldn't get secret prod/db") && err.contains("etcd down"), "{err}");

    vm.unmount_pod_volumes("uid-1").unwrap();
    assert!(mounter.mounted.lock().unwrap().is_empty());

    // A finished pod's volumes are torn down: unmounted and their directories gone, the pod
    // directory kept.
    api.fail_with(None);
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(mounter.mounted.lock().unwrap().len(), 1);
    vm.tear_down_pod_volumes("uid-1").unwrap();
    assert!(mounter.mounted.lock().unwrap().is_empty());
    assert!(!secret_dir.exists() && !paths["conf"].exists());
    assert!(root.path().join("pods/uid-1").is_dir());
    vm.tear_down_pod_volumes("uid-1").unwrap();
}

#[tokio::test]
async fn projected_token_is_bound_and_rotated_at_eighty_percent() {
    let api = FakeVolumeApi::new();
    let (_root, vm, _, clock) = setup(Some(api.clone()));
    api.set_now(SystemTime::UNIX_EPOCH + T0);
    let token = ServiceAccountTokenProjection {
        path: "token".into(),
        expiration_seconds: Some(3600),
        audience: Some("api".into()),
        ..Default::default()
    };
    let projected = Volume {
        name: "kube-api-access".into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o644),
            sources: Some(vec![VolumeProjection { service_account_token: Some(token), ..Default::default() }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = pod(vec![projected]);
    let paths = vm.mount_pod_volumes(&p).await.unwrap();
    let file = paths["kube-api-access"].join("token");
    assert_eq!(read(&file), "token-1");
    let reqs = api.token_requests();
    let (ns, sa, req) = &reqs[0];
    assert_eq!((ns.as_str(), sa.as_str()), ("prod", "builder"));
    let bound = req.spec.as_ref().unwrap().bound_object_ref.clone().unwrap();
    assert_eq!((bound.name.as_deref(), bound.uid.as_deref()), (Some("web"), Some("uid-1")));

    clock.advance(Duration::from_secs(2800));
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(api.token_requests().len(), 1, "cached below 80% of the lifetime");
    clock.advance(Duration::from_secs(100));
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(api.token_requests().len(), 2);
    assert_eq!(read(&file), "token-2");

    vm.unmount_pod_volumes("uid-1").unwrap();
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(api.token_requests().len(), 3, "a removed pod's tokens are forgotten");
}

#[test]
fn volume_dirs_lists_plugin_subdirectories() {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["volumes/kubernetes.io~secret/a", "volumes/kubernetes.io~empty-dir/b"] {
        std::fs::create_dir_all(tmp.path().join(d)).unwrap();
    }
    let found: BTreeMap<String, bool> =
        volume_dirs(tmp.path()).into_iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p.is_dir())).collect();
    assert_eq!(found, BTreeMap::from([("a".to_string(), true), ("b".to_string(), true)]));
}

#[tokio::test]
#[ignore = "needs root (mounts a tmpfs on a temp dir): run hack/test.sh"]
async fn secret_volume_sits_on_a_real_tmpfs_and_pod_removal_waits_for_the_unmount() {
    use crate::kuberuntime::pod_dirs::PodDirs;
    let api = FakeVolumeApi::new();
    api.put_secret("prod", "db", &[("password", "s3cret")]);
    let root = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(SystemTime::UNIX_EPOCH + T0));
    let vm = VolumeManager::new(root.path(), Some(Arc::new(api) as Arc<dyn VolumeApi>), Arc::new(mount::SystemMounter), clock);
    let mem = Volume {
        name: "cache".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity("1Mi".into())),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = pod(vec![secret_vol("creds", "db"), mem]);
    let paths = vm.mount_pod_volumes(&p).await.unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = |p: &Path| mountinfo.lines().find(|l| l.split(' ').nth(4) == p.to_str()).map(str::to_string);
    let secret_line = line(&paths["creds"]).expect("secret volume mounted");
    assert!(secret_line.contains(" - tmpfs "), "{secret_line}");
    assert!(line(&paths["cache"]).expect("memory emptyDir mounted").contains("size=1024k"));
    assert_eq!(std::fs::read_to_string(paths["creds"].join("password")).unwrap(), "s3cret");
    vm.mount_pod_volumes(&p).await.unwrap();
    let again = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(again.lines().filter(|l| l.split(' ').nth(4) == paths["creds"].to_str()).count(), 1, "no stacked mounts on resync");

    let dirs = PodDirs::new(root.path(), "uid-1");
    let err = dirs.remove().unwrap_err().to_string();
    assert!(err.contains("still mounted"), "{err}");
    assert_eq!(std::fs::read_to_string(paths["creds"].join("password")).unwrap(), "s3cret", "nothing removed through the mount");
    vm.unmount_pod_volumes("uid-1").unwrap();
    assert!(!mount::is_mount_point(&paths["creds"]).unwrap());
    dirs.remove().unwrap();
    assert!(!root.path().join("pods/uid-1").exists());
}

#[tokio::test]
async fn immutable_objects_are_fetched_once_while_pods_use_them() {
    let api = FakeVolumeApi::new();
    let (_root, vm, _, _) = setup(Some(api.clone()));
    api.put_secret("prod", "db", &[("password", "one")]);
    api.set_immutable("prod", "db");
    let cm = Volume {
        name: "conf".into(),
        config_map: Some(ConfigMapVolumeSource { name: "app".into(), ..Default::default() }),
        ..Default::default()
    };
    api.put_config_map("prod", "app", &[("app.conf", "v=1")]);
    let p = pod(vec![secret_vol("creds", "db"), cm]);

    let paths = vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(api.object_gets(), 2);
    vm.mount_pod_volumes(&p).await.unwrap();
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(api.object_gets(), 4, "the mutable ConfigMap is fetched on each sync, the immutable Secret once");
    assert_eq!(read(&paths["creds"].join("password")), "one");

    // Deleted and re-created under the same name: the pods that had it keep it; once they are
    // gone the new one is fetched.
    api.delete_secret("prod", "db");
    api.put_secret("prod", "db", &[("password", "two")]);
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(read(&paths["creds"].join("password")), "one");
    vm.unmount_pod_volumes("uid-1").unwrap();
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(read(&paths["creds"].join("password")), "two");
}

#[test]
fn memory_empty_dirs_are_sized_as_upstream() {
    let (gi, mi) = (1u64 << 30, 1u64 << 20);
    // Allocatable, narrowed by the pod's limit, narrowed by sizeLimit; each only when smaller.
    assert_eq!(super::memory_size(Some(8 * gi), None, None), Some(8 * gi));
    assert_eq!(super::memory_size(Some(8 * gi), Some(512 * mi), None), Some(512 * mi));
    assert_eq!(super::memory_size(Some(8 * gi), Some(512 * mi), Some(64 * mi)), Some(64 * mi));
    assert_eq!(super::memory_size(Some(8 * gi), Some(512 * mi), Some(gi)), Some(512 * mi), "sizeLimit over the pod limit");
    assert_eq!(super::memory_size(Some(gi), Some(8 * gi), None), Some(gi), "pod limit over allocatable");
    assert_eq!(super::memory_size(Some(gi), None, Some(0)), Some(gi), "zero is ignored");
    assert_eq!(super::memory_size(None, None, Some(64 * mi)), Some(64 * mi));
    assert_eq!(super::memory_size(None, None, None), None);
}

#[tokio::test]
async fn a_memory_empty_dir_without_size_limit_gets_the_pods_memory_limit() {
    use k8s_openapi::api::core::v1::ResourceRequirements;
    let (_root, vm, mounter, _) = setup(None);
    let vm = vm.with_node_allocatable(std::collections::BTreeMap::from([("memory".to_string(), Quantity("4Gi".into()))]));
    let mem = Volume {
        name: "cache".into(),
        empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".into()), ..Default::default() }),
        ..Default::default()
    };
    let mut p = pod(vec![mem.clone()]);
    let limits = std::collections::BTreeMap::from([("memory".to_string(), Quantity("128Mi".into()))]);
    p.spec.as_mut().unwrap().containers = vec![k8s_openapi::api::core::v1::Container {
        name: "c".into(),
        resources: Some(ResourceRequirements { limits: Some(limits), ..Default::default() }),
        ..Default::default()
    }];
    let paths = vm.mount_pod_volumes(&p).await.unwrap();
    assert!(mounter.log.lock().unwrap().contains(&(paths["cache"].clone(), Some(128 << 20))));
    // Without limits: the node's allocatable memory.
    let mut q = pod(vec![mem]);
    q.metadata.uid = Some("uid-2".into());
    q.spec.as_mut().unwrap().containers = vec![k8s_openapi::api::core::v1::Container { name: "c".into(), ..Default::default() }];
    let paths = vm.mount_pod_volumes(&q).await.unwrap();
    assert!(mounter.log.lock().unwrap().contains(&(paths["cache"].clone(), Some(4 << 30))), "{:?}", mounter.log.lock().unwrap());
}
