//! Each resource's devices as its plugin last reported them and the state of that plugin's
//! endpoint (upstream `allDevices`, `healthyDevices`, `unhealthyDevices` and `endpoints`), and
//! the node capacity and allocatable they make (upstream `GetCapacity`).
//!
//! A resource shows in the node status once its plugin listed devices or stopped: capacity is
//! every device, allocatable the healthy ones. When the plugin's `ListAndWatch` ends, all its
//! devices turn unhealthy; [`ENDPOINT_STOP_GRACE_PERIOD`] later the resource is forgotten and
//! reported with capacity 0 from then on (upstream sets a removed resource's capacity to 0 in
//! the node object and keeps it there). Pure: time is passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::v1beta1::{Device, HEALTHY, UNHEALTHY};

/// How long a resource whose plugin stopped keeps its capacity (upstream
/// `endpointStopGracePeriod`), so pods using its devices keep passing admission meanwhile.
pub const ENDPOINT_STOP_GRACE_PERIOD: Duration = Duration::from_secs(5 * 60);

/// Device plugin resources for the node status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceCapacity {
    /// Every device of each resource, healthy or not.
    pub capacity: BTreeMap<String, i64>,
    /// The healthy devices of each resource.
    pub allocatable: BTreeMap<String, i64>,
}

/// The plugin behind a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Connected; `generation` tells it from earlier and later registrations.
    Running {
        /// The registration's number, counted up by the manager on every registration.
        generation: u64,
    },
    /// Its `ListAndWatch` ended at `at` (or it is known from the checkpoint only).
    Stopped {
        /// When it stopped, or when the checkpoint naming it was read; the resource is
        /// forgotten a grace period later.
        at: Instant,
    },
}

#[derive(Debug, Clone)]
struct Resource {
    devices: BTreeMap<String, Device>,
    /// Whether it shows in the node status (it listed devices or its plugin stopped).
    listed: bool,
    endpoint: Endpoint,
}

/// Devices and endpoints of every registered resource.
#[derive(Debug, Clone)]
pub struct DeviceState {
    resources: BTreeMap<String, Resource>,
    /// Resources forgotten after their grace period: reported with capacity 0.
    removed: BTreeSet<String>,
    grace: Duration,
}

impl Default for DeviceState {
    fn default() -> Self {
        Self::new(ENDPOINT_STOP_GRACE_PERIOD)
    }
}

impl DeviceState {
    /// Empty, forgetting stopped resources after `grace`.
    pub fn new(grace: Duration) -> Self {
        Self { resources: BTreeMap::new(), removed: BTreeSet::new(), grace }
    }

    /// A plugin registered for `resource` as endpoint `generation`, replacing any earlier one.
    /// Devices already known stay (unhealthy if the earlier plugin stopped) until it lists its own.
    pub fn connected(&mut self, resource: &str, generation: u64) {
        let was_removed = self.removed.remove(resource);
        let entry = self.resources.entry(resource.to_string()).or_insert_with(|| Resource {
            devices: BTreeMap::new(),
            listed: was_removed,
            endpoint: Endpoint::Running { generation },
        });
        entry.endpoint = Endpoint::Running { generation };
    }

    fn current(&mut self, resource: &str, generation: u64) -> Option<&mut Resource> {
        self.resources.get_mut(resource).filter(|r| r.endpoint == Endpoint::Running { generation })
    }

    /// A `ListAndWatch` answer of endpoint `generation`: the full list of the resource's devices.
    /// Returns false (and changes nothing) if that endpoint was replaced or stopped.
    pub fn update(&mut self, resource: &str, generation: u64, devices: Vec<Device>) -> bool {
        let Some(r) = self.current(resource, generation) else { return false };
        r.devices = devices.into_iter().map(|d| (d.id.clone(), d)).collect();
        r.listed = true;
        true
    }

    /// Endpoint `generation`'s `ListAndWatch` ended at `at`: every device of the resource turns
    /// unhealthy and the grace period starts. Returns false if that endpoint was replaced.
    pub fn stopped(&mut self, resource: &str, generation: u64, at: Instant) -> bool {
        let Some(r) = self.current(resource, generation) else { return false };
        for d in r.devices.values_mut() {
            d.health = UNHEALTHY.into();
        }
        r.listed = true;
        r.endpoint = Endpoint::Stopped { at };
        true
    }

    /// A resource read from the checkpoint: shown with no devices until its plugin registers
    /// again, forgotten if it does not within the grace period from `at`.
    pub fn restored(&mut self, resource: &str, at: Instant) {
        self.resources.entry(resource.to_string()).or_insert(Resource {
            devices: BTreeMap::new(),
            listed: true,
            endpoint: Endpoint::Stopped { at },
        });
    }

    /// Forgets the resources whose plugin stopped more than the grace period before `now`;
    /// returns their names.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let grace = self.grace;
        let expired: Vec<String> = self
            .resources
            .iter()
            .filter(|(_, r)| matches!(r.endpoint, Endpoint::Stopped { at } if now.saturating_duration_since(at) > grace))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            self.resources.remove(name);
            self.removed.insert(name.clone());
        }
        expired
    }

    /// Capacity and allocatable of every shown resource ([`Self::expire`] first).
    pub fn capacity(&self) -> ResourceCapacity {
        let mut out = ResourceCapacity::default();
        for (name, r) in self.resources.iter().filter(|(_, r)| r.listed) {
            out.capacity.insert(name.clone(), r.devices.len() as i64);
            out.allocatable.insert(name.clone(), r.devices.values().filter(|d| d.health == HEALTHY).count() as i64);
        }
        for name in &self.removed {
            out.capacity.insert(name.clone(), 0);
            out.allocatable.insert(name.clone(), 0);
        }
        out
    }

    /// Whether a plugin registered `resource` (and it was not forgotten since).
    pub fn is_registered(&self, resource: &str) -> bool {
        self.resources.contains_key(resource)
    }

    /// The healthy devices of `resource`; `None` if it is not registered.
    pub fn healthy(&self, resource: &str) -> Option<BTreeSet<String>> {
        let r = self.resources.get(resource)?;
        Some(r.devices.values().filter(|d| d.health == HEALTHY).map(|d| d.id.clone()).collect())
    }

    /// The device `id` of `resource`, as last listed.
    pub fn device(&self, resource: &str, id: &str) -> Option<&Device> {
        self.resources.get(resource)?.devices.get(id)
    }

    /// The endpoint behind `resource`.
    pub fn endpoint(&self, resource: &str) -> Option<Endpoint> {
        self.resources.get(resource).map(|r| r.endpoint)
    }

    /// Healthy device IDs of every registered resource, for the checkpoint.
    pub fn registered_devices(&self) -> BTreeMap<String, Vec<String>> {
        self.resources.keys().map(|name| (name.clone(), self.healthy(name).unwrap_or_default().into_iter().collect())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(health: &[&str]) -> Vec<Device> {
        health.iter().enumerate().map(|(i, h)| Device { id: i.to_string(), health: h.to_string(), topology: None }).collect()
    }

    fn pair(state: &DeviceState, resource: &str) -> Option<(i64, i64)> {
        let c = state.capacity();
        Some((*c.capacity.get(resource)?, *c.allocatable.get(resource)?))
    }

    const R: &str = "test.device/r";

    #[test]
    fn capacity_counts_every_device_and_allocatable_the_healthy_ones() {
        let mut s = DeviceState::default();
        s.connected(R, 1);
        assert_eq!(pair(&s, R), None, "not shown before the plugin lists devices");
        assert!(s.update(R, 1, devices(&[HEALTHY; 4])));
        assert_eq!(pair(&s, R), Some((4, 4)));
        assert!(s.update(R, 1, devices(&[HEALTHY, UNHEALTHY, HEALTHY, UNHEALTHY])));
        assert_eq!(pair(&s, R), Some((4, 2)));
        assert_eq!(s.healthy(R).unwrap(), BTreeSet::from(["0".to_string(), "2".to_string()]));
        assert!(s.update(R, 1, devices(&[HEALTHY; 4])));
        assert_eq!(pair(&s, R), Some((4, 4)));
        assert_eq!(pair(&s, "test.device/other"), None);
    }

    #[test]
    fn a_stopped_plugin_keeps_capacity_for_the_grace_period_then_reports_zero() {
        let start = Instant::now();
        let mut s = DeviceState::new(Duration::from_secs(300));
        s.connected(R, 1);
        s.update(R, 1, devices(&[HEALTHY, HEALTHY]));
        assert!(s.stopped(R, 1, start));
        assert_eq!(pair(&s, R), Some((2, 0)));
        assert!(s.expire(start + Duration::from_secs(300)).is_empty(), "the grace period is exclusive");
        assert_eq!(pair(&s, R), Some((2, 0)));
        assert_eq!(s.expire(start + Duration::from_secs(301)), vec![R.to_string()]);
        assert_eq!(pair(&s, R), Some((0, 0)));
        assert!(!s.is_registered(R));
        assert!(s.expire(start + Duration::from_secs(900)).is_empty());
        assert_eq!(pair(&s, R), Some((0, 0)), "a removed resource stays at 0");

        // Registering again starts from the removed state, then lists.
        s.connected(R, 2);
        assert_eq!(pair(&s, R), Some((0, 0)));
        s.update(R, 2, devices(&[HEALTHY]));
        assert_eq!(pair(&s, R), Some((1, 1)));
    }

    #[test]
    fn a_plugin_failing_before_listing_shows_zero() {
        let mut s = DeviceState::default();
        s.connected(R, 7);
        assert!(s.stopped(R, 7, Instant::now()));
        assert_eq!(pair(&s, R), Some((0, 0)));
    }

    #[test]
    fn a_replaced_endpoint_no_longer_changes_the_resource() {
        let now = Instant::now();
        let mut s = DeviceState::default();
        s.connected(R, 1);
        s.update(R, 1, devices(&[HEALTHY]));
        s.connected(R, 2);
        assert!(!s.update(R, 1, devices(&[HEALTHY, HEALTHY])));
        assert!(!s.stopped(R, 1, now));
        assert_eq!(pair(&s, R), Some((1, 1)));
        assert_eq!(s.endpoint(R), Some(Endpoint::Running { generation: 2 }));
        // A stopped endpoint's resource is running again once a new plugin registers.
        assert!(s.stopped(R, 2, now));
        s.connected(R, 3);
        assert_eq!(pair(&s, R), Some((1, 0)), "unhealthy until the new plugin lists");
        assert!(s.expire(now + Duration::from_secs(3600)).is_empty());
        s.update(R, 3, devices(&[HEALTHY]));
        assert_eq!(pair(&s, R), Some((1, 1)));
    }

    #[test]
    fn restored_resources_show_zero_until_their_plugin_registers() {
        let now = Instant::now();
        let mut s = DeviceState::default();
        s.restored(R, now);
        assert_eq!(pair(&s, R), Some((0, 0)));
        assert!(s.is_registered(R));
        assert_eq!(s.healthy(R), Some(BTreeSet::new()));
        assert_eq!(s.registered_devices(), BTreeMap::from([(R.to_string(), vec![])]));
        s.connected(R, 1);
        s.update(R, 1, devices(&[HEALTHY, UNHEALTHY]));
        assert_eq!(s.registered_devices(), BTreeMap::from([(R.to_string(), vec!["0".to_string()])]));
    }
}
