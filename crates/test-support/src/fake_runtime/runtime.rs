//! [`RuntimeService`] for [`FakeRuntime`]: sandbox and container lifecycles as containerd runs them.

use std::time::Duration;

use async_trait::async_trait;
use kubelet_cri::{Code, CriError, Result, RuntimeService, api};

use super::{Container, ExecAnswer, FakeRuntime, START_ERROR_EXIT_CODE, Sandbox, State, failed, filter, image, not_found};

const RUNNING: i32 = api::ContainerState::ContainerRunning as i32;
const CREATED: i32 = api::ContainerState::ContainerCreated as i32;
/// Exit codes of a process killed by SIGTERM and by SIGKILL.
const SIGTERM_EXIT_CODE: i32 = 128 + 15;
const SIGKILL_EXIT_CODE: i32 = 128 + 9;

/// Puts a container in the exited state at `now`. `reason` defaults as containerd's does.
pub(super) fn mark_exited(status: &mut api::ContainerStatus, now: i64, exit_code: i32, reason: Option<(&str, String)>) {
    let (reason, message) = match reason {
        Some((reason, message)) => (reason.to_owned(), message),
        None if exit_code == 0 => ("Completed".to_owned(), String::new()),
        None => ("Error".to_owned(), String::new()),
    };
    status.state = api::ContainerState::ContainerExited as i32;
    status.finished_at = now;
    status.exit_code = exit_code;
    status.reason = reason;
    status.message = message;
}

fn invalid(op: &'static str, object: &str, message: &str) -> CriError {
    failed(op, object, Code::InvalidArgument, message.to_owned())
}

fn host_network(config: &api::PodSandboxConfig) -> bool {
    let network = config
        .linux
        .as_ref()
        .and_then(|linux| linux.security_context.as_ref())
        .and_then(|security| security.namespace_options.as_ref())
        .map(|options| options.network);
    network == Some(api::NamespaceMode::Node as i32)
}

impl FakeRuntime {
    fn record(&self, state: &mut State, op: &str, object: &str) {
        let call = if object.is_empty() { op.to_owned() } else { format!("{op} {object}") };
        state.calls.push(call);
    }
}

/// Stops every running container of `sandbox_id` with `exit_code` at `now`.
fn stop_containers_of(state: &mut State, sandbox_id: &str, now: i64, exit_code: i32) {
    for container in state.containers.values_mut().filter(|c| c.pod_sandbox_id == sandbox_id) {
        if container.status.state == RUNNING {
            mark_exited(&mut container.status, now, exit_code, None);
        }
    }
}

#[async_trait]
impl RuntimeService for FakeRuntime {
    async fn version(&self) -> Result<api::VersionResponse> {
        self.record(&mut self.lock(), "Version", "");
        Ok(api::VersionResponse {
            version: "0.1.0".to_owned(),
            runtime_name: "fake".to_owned(),
            runtime_version: "0.1.0".to_owned(),
            runtime_api_version: "v1".to_owned(),
        })
    }

    async fn status(&self, _verbose: bool) -> Result<api::StatusResponse> {
        self.record(&mut self.lock(), "Status", "");
        let ready = |kind: &str| api::RuntimeCondition { r#type: kind.to_owned(), status: true, ..Default::default() };
        Ok(api::StatusResponse {
            status: Some(api::RuntimeStatus { conditions: vec![ready("RuntimeReady"), ready("NetworkReady")] }),
            ..Default::default()
        })
    }

    async fn run_pod_sandbox(&self, config: api::PodSandboxConfig, runtime_handler: &str) -> Result<String> {
        const OP: &str = "RunPodSandbox";
        let now = self.clock.now_nanos();
        let mut state = self.lock();
        let meta = config.metadata.clone().unwrap_or_default();
        self.record(&mut state, OP, &meta.name);
        if meta.name.is_empty() || meta.namespace.is_empty() || meta.uid.is_empty() {
            return Err(invalid(OP, &meta.name, "sandbox metadata needs name, namespace and uid"));
        }
        let name = format!("{}_{}_{}_{}", meta.name, meta.namespace, meta.uid, meta.attempt);
        if state.sandboxes.values().any(|s| s.name == name) {
            return Err(failed(OP, &meta.name, Code::AlreadyExists, format!("name {name:?} is reserved")));
        }
        let id = state.new_id();
        let ip = if host_network(&config) {
            String::new()
        } else {
            state.next_ip += 1;
            let n = state.next_ip;
            format!("198.18.{}.{}", (n >> 8) & 0xff, n & 0xff)
        };
        let namespace_options =
            config.linux.as_ref().and_then(|linux| linux.security_context.as_ref()).and_then(|security| security.namespace_options.clone());
        let status = api::PodSandboxStatus {
            id: id.clone(),
            metadata: Some(meta),
            state: api::PodSandboxState::SandboxReady as i32,
            created_at: now,
            network: Some(api::PodSandboxNetworkStatus { ip, additional_ips: Vec::new() }),
            linux: Some(api::LinuxPodSandboxStatus { namespaces: Some(api::Namespace { options: namespace_options }) }),
            labels: config.labels,
            annotations: config.annotations,
            runtime_handler: runtime_handler.to_owned(),
        };
        let sandbox = Sandbox { status, name, log_directory: config.log_directory };
        state.sandboxes.insert(id.clone(), sandbox);
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()> {
        const OP: &str = "StopPodSandbox";
        let now = self.clock.now_nanos();
        let mut state = self.lock();
        self.record(&mut state, OP, pod_sandbox_id);
        let id = state.sandbox_id(pod_sandbox_id).ok_or_else(|| not_found(OP, pod_sandbox_id, "sandbox"))?;
        // containerd stops the containers with no grace period left: SIGKILL.
        stop_containers_of(&mut state, &id, now, SIGKILL_EXIT_CODE);
        if let Some(sandbox) = state.sandboxes.get_mut(&id) {
            sandbox.status.state = api::PodSandboxState::SandboxNotready as i32;
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, pod_sandbox_id: &str) -> Result<()> {
        let mut state = self.lock();
        self.record(&mut state, "RemovePodSandbox", pod_sandbox_id);
        let Some(id) = state.sandbox_id(pod_sandbox_id) else {
            return Ok(());
        };
        state.containers.retain(|_, c| c.pod_sandbox_id != id);
        state.sandboxes.remove(&id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, pod_sandbox_id: &str) -> Result<api::PodSandboxStatus> {
        const OP: &str = "PodSandboxStatus";
        let mut state = self.lock();
        self.record(&mut state, OP, pod_sandbox_id);
        let id = state.sandbox_id(pod_sandbox_id).ok_or_else(|| not_found(OP, pod_sandbox_id, "sandbox"))?;
        state.sandboxes.get(&id).map(|s| s.status.clone()).ok_or_else(|| not_found(OP, pod_sandbox_id, "sandbox"))
    }

    async fn list_pod_sandbox(&self, filter: Option<api::PodSandboxFilter>) -> Result<Vec<api::PodSandbox>> {
        let mut state = self.lock();
        self.record(&mut state, "ListPodSandbox", "");
        let mut filter = filter.unwrap_or_default();
        filter::normalize_sandbox_filter(&state, &mut filter);
        let all = state.sandboxes.values().map(|s| api::PodSandbox {
            id: s.status.id.clone(),
            metadata: s.status.metadata.clone(),
            state: s.status.state,
            created_at: s.status.created_at,
            labels: s.status.labels.clone(),
            annotations: s.status.annotations.clone(),
            runtime_handler: s.status.runtime_handler.clone(),
        });
        Ok(all.filter(|s| filter::sandbox_matches(&filter, s)).collect())
    }

    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: api::ContainerConfig,
        _sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        const OP: &str = "CreateContainer";
        let now = self.clock.now_nanos();
        let mut state = self.lock();
        let meta = config.metadata.clone().unwrap_or_default();
        self.record(&mut state, OP, &meta.name);
        if meta.name.is_empty() {
            return Err(invalid(OP, &meta.name, "container metadata needs a name"));
        }
        if let Some(err) = state.create_errors.get(&meta.name) {
            return Err(err.clone());
        }
        let sandbox_id = state.sandbox_id(pod_sandbox_id).ok_or_else(|| not_found(OP, pod_sandbox_id, "sandbox"))?;
        let (sandbox_name, sandbox_ready, log_directory) = match state.sandboxes.get(&sandbox_id) {
            Some(s) => (s.name.clone(), s.status.state == api::PodSandboxState::SandboxReady as i32, s.log_directory.clone()),
            None => return Err(not_found(OP, pod_sandbox_id, "sandbox")),
        };
        if !sandbox_ready {
            let message = format!("sandbox {sandbox_id:?} is not ready");
            return Err(failed(OP, &meta.name, Code::FailedPrecondition, message));
        }
        let spec = config.image.clone().unwrap_or_default();
        let image_ref =
            image::find(&state, &spec.image).map(|found| found.id.clone()).ok_or_else(|| not_found(OP, &spec.image, "image"))?;
        // Drop the attempt of the sandbox, keep the container's: `<ctr>_<pod>_<ns>_<uid>_<attempt>`.
        let pod_part = sandbox_name.rsplit_once('_').map_or(sandbox_name.as_str(), |(head, _)| head);
        let name = format!("{}_{pod_part}_{}", meta.name, meta.attempt);
        if state.containers.values().any(|c| c.name == name) {
            return Err(failed(OP, &meta.name, Code::AlreadyExists, format!("name {name:?} is reserved")));
        }
        let log_path = if log_directory.is_empty() || config.log_path.is_empty() {
            String::new()
        } else {
            format!("{}/{}", log_directory.trim_end_matches('/'), config.log_path)
        };
        let id = state.new_id();
        let status = api::ContainerStatus {
            id: id.clone(),
            metadata: Some(meta),
            state: CREATED,
            created_at: now,
            image: Some(spec),
            image_ref,
            labels: config.labels,
            annotations: config.annotations,
            mounts: config.mounts,
            log_path,
            ..Default::default()
        };
        state.containers.insert(id.clone(), Container { status, pod_sandbox_id: sandbox_id, name });
        Ok(id)
    }

    async fn create_container_with(
        &self,
        pod_sandbox_id: &str,
        config: api::ContainerConfig,
        extras: &kubelet_cri::ContainerConfigExtras,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        let userns = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|sc| sc.namespace_options.as_ref())
            .and_then(|n| n.userns_options.clone());
        let id = self.create_container(pod_sandbox_id, config, sandbox_config).await?;
        self.lock().container_userns.insert(id.clone(), userns);
        if !extras.is_empty() {
            self.lock().extras.insert(id.clone(), extras.clone());
        }
        Ok(id)
    }

    async fn start_container(&self, container_id: &str) -> Result<()> {
        const OP: &str = "StartContainer";
        let now = self.clock.now_nanos();
        let mut state = self.lock();
        self.record(&mut state, OP, container_id);
        let id = state.container_id(container_id).ok_or_else(|| not_found(OP, container_id, "container"))?;
        let name = match state.containers.get(&id) {
            Some(c) if c.status.state == CREATED => c.status.metadata.as_ref().map(|m| m.name.clone()),
            Some(_) => {
                let message = format!("container {id:?} is not in created state");
                return Err(failed(OP, container_id, Code::FailedPrecondition, message));
            }
            None => return Err(not_found(OP, container_id, "container")),
        };
        if name.as_ref().is_some_and(|n| state.lost_starts.remove(n)) {
            return Err(failed(OP, container_id, Code::Unavailable, "connection lost before the start".into()));
        }
        let start_error = name.and_then(|name| state.start_errors.get(&name).cloned());
        let Some(container) = state.containers.get_mut(&id) else {
            return Err(not_found(OP, container_id, "container"));
        };
        if let Some(err) = start_error {
            mark_exited(&mut container.status, now, START_ERROR_EXIT_CODE, Some(("StartError", err.to_string())));
            return Err(err);
        }
        container.status.state = RUNNING;
        container.status.started_at = now;
        Ok(())
    }

    async fn update_container_resources(&self, container_id: &str, linux: api::LinuxContainerResources) -> Result<()> {
        const OP: &str = "UpdateContainerResources";
        let mut state = self.lock();
        self.record(&mut state, OP, container_id);
        let id = state.container_id(container_id).ok_or_else(|| not_found(OP, container_id, "container"))?;
        match state.containers.get_mut(&id) {
            Some(c) if c.status.state == RUNNING || c.status.state == CREATED => {
                c.status.resources = Some(api::ContainerResources { linux: Some(linux), ..Default::default() });
                Ok(())
            }
            Some(_) => Err(failed(OP, container_id, Code::FailedPrecondition, format!("container {id:?} is not running"))),
            None => Err(not_found(OP, container_id, "container")),
        }
    }

    /// Memory usage as set with [`FakeRuntime::set_memory_usage`] (0 otherwise), for the
    /// containers the filter names.
    async fn list_container_stats(&self, filter: Option<api::ContainerStatsFilter>) -> Result<Vec<api::ContainerStats>> {
        let state = self.lock();
        let id = filter.map(|f| f.id).filter(|id| !id.is_empty());
        Ok(state
            .containers
            .iter()
            .filter(|(cid, _)| id.as_ref().is_none_or(|want| *cid == want))
            .map(|(cid, c)| api::ContainerStats {
                attributes: Some(api::ContainerAttributes { id: cid.clone(), metadata: c.status.metadata.clone(), ..Default::default() }),
                memory: Some(api::MemoryUsage {
                    usage_bytes: Some(api::UInt64Value { value: state.memory_usage.get(cid).copied().unwrap_or(0) }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect())
    }

    async fn reopen_container_log(&self, container_id: &str) -> Result<()> {
        const OP: &str = "ReopenContainerLog";
        let mut state = self.lock();
        self.record(&mut state, OP, container_id);
        let id = state.container_id(container_id).ok_or_else(|| not_found(OP, container_id, "container"))?;
        match state.containers.get(&id) {
            Some(c) if c.status.state == RUNNING => Ok(()),
            Some(_) => Err(failed(OP, container_id, Code::FailedPrecondition, format!("container {id:?} is not running"))),
            None => Err(not_found(OP, container_id, "container")),
        }
    }

    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()> {
        const OP: &str = "StopContainer";
        let now = self.clock.now_nanos();
        let mut state = self.lock();
        self.record(&mut state, OP, container_id);
        let id = state.container_id(container_id).ok_or_else(|| not_found(OP, container_id, "container"))?;
        let running = state.containers.get_mut(&id).filter(|c| c.status.state == RUNNING);
        if let Some(container) = running {
            // With a grace period the process is taken to die of SIGTERM; without, of SIGKILL.
            let code = if timeout.is_zero() { SIGKILL_EXIT_CODE } else { SIGTERM_EXIT_CODE };
            mark_exited(&mut container.status, now, code, None);
        }
        Ok(())
    }

    async fn remove_container(&self, container_id: &str) -> Result<()> {
        let mut state = self.lock();
        self.record(&mut state, "RemoveContainer", container_id);
        if let Some(id) = state.container_id(container_id) {
            state.containers.remove(&id);
        }
        Ok(())
    }

    async fn list_containers(&self, filter: Option<api::ContainerFilter>) -> Result<Vec<api::Container>> {
        let mut state = self.lock();
        self.record(&mut state, "ListContainers", "");
        let mut filter = filter.unwrap_or_default();
        filter::normalize_container_filter(&state, &mut filter);
        let all = state.containers.values().map(|c| api::Container {
            id: c.status.id.clone(),
            pod_sandbox_id: c.pod_sandbox_id.clone(),
            metadata: c.status.metadata.clone(),
            image: c.status.image.clone(),
            image_ref: c.status.image_ref.clone(),
            state: c.status.state,
            created_at: c.status.created_at,
            labels: c.status.labels.clone(),
            annotations: c.status.annotations.clone(),
            ..Default::default()
        });
        Ok(all.filter(|c| filter::container_matches(&filter, c)).collect())
    }

    async fn exec(&self, request: api::ExecRequest) -> Result<String> {
        self.streaming_url("Exec", "exec", &request.container_id, false)
    }

    async fn attach(&self, request: api::AttachRequest) -> Result<String> {
        self.streaming_url("Attach", "attach", &request.container_id, false)
    }

    async fn port_forward(&self, request: api::PortForwardRequest) -> Result<String> {
        self.streaming_url("PortForward", "portforward", &request.pod_sandbox_id, true)
    }

    async fn exec_sync(&self, container_id: &str, cmd: Vec<String>, timeout: Option<Duration>) -> Result<kubelet_cri::ExecSyncOutput> {
        let answer = {
            let mut state = self.lock();
            self.record(&mut state, "ExecSync", &cmd.join(" "));
            let id = state.container_id(container_id).ok_or_else(|| not_found("ExecSync", container_id, "container"))?;
            let container = &state.containers[&id];
            if container.status.state != RUNNING {
                return Err(failed("ExecSync", container_id, Code::FailedPrecondition, format!("container {id} is not running")));
            }
            let name = container.status.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
            state.exec_results.get(&(name, cmd.join(" "))).cloned()
        };
        match answer {
            None => Ok(kubelet_cri::ExecSyncOutput::default()),
            Some(ExecAnswer::Exit(exit_code, stdout)) => {
                Ok(kubelet_cri::ExecSyncOutput { stdout: stdout.into_bytes(), stderr: Vec::new(), exit_code })
            }
            Some(ExecAnswer::Refuse(message)) => Err(failed("ExecSync", container_id, Code::Unknown, message)),
            Some(ExecAnswer::Hang) => match timeout {
                Some(t) => {
                    tokio::time::sleep(t).await;
                    Err(CriError::Timeout { op: "ExecSync", object: container_id.to_owned(), timeout: t })
                }
                None => std::future::pending().await,
            },
        }
    }

    async fn container_status(&self, container_id: &str) -> Result<api::ContainerStatus> {
        const OP: &str = "ContainerStatus";
        let mut state = self.lock();
        self.record(&mut state, OP, container_id);
        let id = state.container_id(container_id).ok_or_else(|| not_found(OP, container_id, "container"))?;
        state.containers.get(&id).map(|c| c.status.clone()).ok_or_else(|| not_found(OP, container_id, "container"))
    }
}

impl FakeRuntime {
    fn streaming_url(&self, op: &'static str, path: &str, object: &str, sandbox: bool) -> Result<String> {
        let mut state = self.lock();
        self.record(&mut state, op, object);
        let id = if sandbox { state.sandbox_id(object) } else { state.container_id(object) };
        let id = id.ok_or_else(|| not_found(op, object, if sandbox { "sandbox" } else { "container" }))?;
        match &state.streaming_base {
            Some(base) => Ok(format!("{base}/{path}/{id}")),
            None => Err(failed(op, object, Code::Unimplemented, "streaming is not set up in this fake".into())),
        }
    }
}
