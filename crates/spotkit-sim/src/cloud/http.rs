//! The HTTP facade: ARM compute paths, each simulated VM's IMDS and the `/_sim/` admin API on
//! one listener, over a shared [`SpotCloud`].
//!
//! Handlers read the (scaled) clock once on arrival, lock the model, advance it to that
//! instant, do one operation and unlock before any `.await`. Authentication is not checked:
//! any bearer token (or none) is accepted, and the server says so once in its log.
//!
//! Routes (`{sub}` and `{rg}` are accepted whatever they are; `api-version` is required):
//! - `PUT|GET|DELETE /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}`
//!   (`GET ...?$expand=instanceView|userData`)
//! - `GET .../virtualMachines/{vm}/instanceView`, `POST .../{vm}/start|deallocate|simulateEviction`
//! - `GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines`
//! - `GET /subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines[?statusOnly=true]`
//! - `GET /subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/operations/{id}[?monitor=true]`
//! - `GET|POST /vm/{name}/metadata/...`: that VM's IMDS (Scheduled Events, instance, token)
//! - `/_sim/...`: admin (see `SIMULATOR.md`)

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use spotkit_cloud::Clock;
use spotkit_core::Timestamp;
use spotkit_core::compute::{EvictionPolicy, MaxPrice, OfferingId, PowerState, Priority, VmSpec};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::SimError;
use super::model::{CreateVm, OpKind, OpStatus, OpView, SpotCloud, VmView};
use super::scenario::{ScriptedEvent, ScriptedKind};
use super::throttle::{Throttle, ThrottleCategory, ThrottleDecision};
use super::wire::{
    ApiError, ApiErrorDetail, CloudError, DiskInstanceView, InstanceView, InstanceViewStatus,
    OperationStatus, VirtualMachine, VirtualMachineListResult, VirtualMachineProperties, rfc3339,
};
use crate::catalog::CatalogSnapshot;
use crate::catalog::http::{CatalogHttpConfig, CatalogProvider, catalog_router_with};
use crate::imds::ImdsEmulator;

/// Simulated time as real time times a speed factor: `sim = sim_anchor + (real - real_anchor)
/// * speed`. Changing the speed re-anchors at the current instant, so time never jumps.
pub struct ScaledClock {
    base: Arc<dyn Clock>,
    anchor: Mutex<(Timestamp, Timestamp, f64)>,
}

impl std::fmt::Debug for ScaledClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaledClock")
            .field("speed", &self.speed())
            .finish_non_exhaustive()
    }
}

impl ScaledClock {
    /// Simulated time starts at `sim_start` now, running `speed` times as fast as `base`.
    #[must_use]
    pub fn new(base: Arc<dyn Clock>, sim_start: Timestamp, speed: f64) -> Self {
        // (real anchor, simulated anchor, speed)
        let real = base.now();
        Self {
            base,
            anchor: Mutex::new((real, sim_start, speed.max(0.0))),
        }
    }

    fn anchor(&self) -> MutexGuard<'_, (Timestamp, Timestamp, f64)> {
        self.anchor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The speed factor.
    #[must_use]
    pub fn speed(&self) -> f64 {
        self.anchor().2
    }

    /// Changes the speed from now on (0 pauses simulated time).
    pub fn set_speed(&self, speed: f64) {
        let now = self.now();
        *self.anchor() = (self.base.now(), now, speed.max(0.0));
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let (real_anchor, sim_anchor, speed) = *self.anchor();
        let real = self.base.now().since(real_anchor);
        sim_anchor.plus(real.mul_f64(speed))
    }

    fn sleep_until(
        &self,
        until: Timestamp,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        let speed = self.speed();
        let wait = until.since(self.now());
        let real_wait = if speed > 0.0 {
            wait.div_f64(speed)
        } else {
            Duration::from_secs(3600)
        };
        let real_until = self.base.now().plus(real_wait);
        self.base.sleep_until(real_until)
    }
}

/// A fault the admin API queued for the next ARM requests.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InjectedFault {
    /// HTTP status to answer with (429 carries `Retry-After` and the Compute body).
    pub status: u16,
    /// How many requests.
    #[serde(default = "one")]
    pub count: u32,
}

const fn one() -> u32 {
    1
}

/// The simulator's HTTP server state. Clones share it.
#[derive(Clone)]
pub struct SimServer {
    inner: Arc<Inner>,
}

struct Inner {
    cloud: Arc<Mutex<SpotCloud>>,
    clock: Arc<ScaledClock>,
    /// Buckets per subscription (lower-cased id).
    throttle: Mutex<HashMap<String, Throttle>>,
    throttle_scale: f64,
    faults: Mutex<VecDeque<InjectedFault>>,
    page_size: usize,
    retry_after: u64,
    auth_logged: AtomicBool,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

const VM_PATH: &str =
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}";

impl SimServer {
    /// A server over `cloud`, on `clock`.
    #[must_use]
    pub fn new(cloud: SpotCloud, clock: Arc<ScaledClock>) -> Self {
        Self::over(Arc::new(Mutex::new(cloud)), clock)
    }

    /// A server over a model someone else also holds.
    #[must_use]
    pub fn over(cloud: Arc<Mutex<SpotCloud>>, clock: Arc<ScaledClock>) -> Self {
        let (scale, page_size, retry_after) = {
            let cloud = lock(&cloud);
            let http = &cloud.scenario().http;
            (
                http.throttle_scale,
                http.page_size.max(1),
                http.retry_after_seconds,
            )
        };
        Self {
            inner: Arc::new(Inner {
                cloud,
                clock,
                throttle: Mutex::new(HashMap::new()),
                throttle_scale: scale,
                faults: Mutex::new(VecDeque::new()),
                page_size,
                retry_after,
                auth_logged: AtomicBool::new(false),
            }),
        }
    }

    /// The model.
    #[must_use]
    pub fn cloud(&self) -> Arc<Mutex<SpotCloud>> {
        Arc::clone(&self.inner.cloud)
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> Arc<ScaledClock> {
        Arc::clone(&self.inner.clock)
    }

    /// Queues a fault for the next ARM requests.
    pub fn push_fault(&self, fault: InjectedFault) {
        lock(&self.inner.faults).push_back(fault);
    }

    /// Every route: ARM compute, each VM's IMDS, the admin API, and the catalog facade (Retail
    /// Prices, Resource SKUs, Resource Graph, Spot Placement Score) over the model's catalog now.
    pub fn router(&self) -> Router {
        let cloud = self.cloud();
        let clock = self.clock();
        let provider: CatalogProvider = Arc::new(move || {
            let now = clock.now();
            lock(&cloud).catalog(now)
        });
        let clock: Arc<dyn Clock> = self.clock();
        let catalog = catalog_router_with(provider, CatalogHttpConfig::new(clock));
        Router::new()
            .route(VM_PATH, put(put_vm).get(get_vm).delete(delete_vm))
            .route(&format!("{VM_PATH}/instanceView"), get(get_instance_view))
            .route(&format!("{VM_PATH}/start"), post(start_vm))
            .route(&format!("{VM_PATH}/deallocate"), post(deallocate_vm))
            .route(&format!("{VM_PATH}/simulateEviction"), post(simulate_eviction))
            .route(
                "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines",
                get(list_group),
            )
            .route(
                "/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines",
                get(list_subscription),
            )
            .route(
                "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/operations/{id}",
                get(operation_status),
            )
            .route("/vm/{name}/{*rest}", any(vm_imds))
            .route("/_sim/bill", get(admin_bill))
            .route("/_sim/log", get(admin_log))
            .route("/_sim/time", get(admin_time))
            .route("/_sim/speed", put(admin_speed))
            .route("/_sim/catalog", get(admin_catalog))
            .route("/_sim/events", post(admin_event))
            .route("/_sim/faults", post(admin_fault))
            .route("/_sim/vms", get(admin_vms))
            .fallback(unknown_route)
            .with_state(self.clone())
            .merge(catalog)
    }

    /// Serves on `listener` until the task ends.
    ///
    /// # Errors
    /// Only if accepting connections fails fatally.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Binds `127.0.0.1:0` and serves from a new task.
    ///
    /// # Errors
    /// If the port cannot be bound.
    pub async fn spawn_on_loopback(
        self,
    ) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        Ok((address, tokio::spawn(self.serve(listener))))
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The checks and bookkeeping of every ARM request, then `operation`.
    fn arm(
        &self,
        subscription: &str,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
        category: ThrottleCategory,
        resource: Option<&str>,
        operation: impl FnOnce(Timestamp) -> Response,
    ) -> Response {
        if query.get("api-version").is_none_or(String::is_empty) {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                Vec::new(),
            );
        }
        if !self.inner.auth_logged.swap(true, Ordering::Relaxed) {
            tracing::info!(
                bearer = headers.contains_key(header::AUTHORIZATION),
                "the simulator does not check authentication: any bearer token is accepted"
            );
        }
        let now = self.now();
        let decision = lock(&self.inner.throttle)
            .entry(subscription.to_ascii_lowercase())
            .or_insert_with(|| Throttle::new(self.inner.throttle_scale))
            .admit(category, resource, now);
        let fault = {
            let mut faults = lock(&self.inner.faults);
            let fault = faults.front_mut().map(|fault| {
                fault.count = fault.count.saturating_sub(1);
                fault.status
            });
            if faults.front().is_some_and(|fault| fault.count == 0) {
                faults.pop_front();
            }
            fault
        };
        let response = if let Some(status) = fault {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status == StatusCode::TOO_MANY_REQUESTS {
                too_many_requests(Duration::from_secs(1), "InjectedFault")
            } else {
                arm_error(
                    status,
                    "InternalServerError",
                    "An injected fault: the simulator was asked to fail this request.",
                    Vec::new(),
                )
            }
        } else if let Some(wait) = decision.throttled {
            too_many_requests(wait, decision.exhausted.as_deref().unwrap_or("Unknown"))
        } else {
            operation(now)
        };
        with_rate_headers(response, &decision)
    }

    fn lro_headers(
        &self,
        headers: &HeaderMap,
        subscription: &str,
        op: &OpView,
        api_version: &str,
        location: bool,
    ) -> Vec<(HeaderName, String)> {
        let base = base_url(headers);
        let status_url = format!(
            "{base}/subscriptions/{subscription}/providers/Microsoft.Compute/locations/{}/operations/{}?api-version={api_version}",
            op.region, op.id
        );
        let mut out = vec![
            (
                HeaderName::from_static("azure-asyncoperation"),
                status_url.clone(),
            ),
            (header::RETRY_AFTER, self.inner.retry_after.to_string()),
        ];
        if location {
            out.push((header::LOCATION, format!("{status_url}&monitor=true")));
        }
        out
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn json_body(status: StatusCode, body: &impl serde::Serialize) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        serde_json::to_string(body).unwrap_or_default(),
    )
        .into_response()
}

fn arm_error(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Vec<ApiErrorDetail>,
) -> Response {
    let mut response = json_body(
        status,
        &CloudError {
            error: ApiError {
                code: code.to_owned(),
                message: message.to_owned(),
                target: None,
                details,
            },
        },
    );
    if let Ok(value) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-ms-error-code", value);
    }
    response
}

fn sim_error(error: &SimError) -> Response {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::CONFLICT);
    arm_error(status, error.arm_code(), &error.to_string(), Vec::new())
}

/// 429 with Compute's body and `Retry-After` (whole seconds, rounded up, simulated time).
fn too_many_requests(wait: Duration, bucket: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let detail = json!({ "operationGroup": bucket, "retryAfterSeconds": seconds }).to_string();
    let mut response = arm_error(
        StatusCode::TOO_MANY_REQUESTS,
        "OperationNotAllowed",
        "The server rejected the request because too many requests have been received for this subscription.",
        vec![ApiErrorDetail {
            code: "TooManyRequests".to_owned(),
            target: Some(bucket.to_owned()),
            message: detail,
        }],
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

fn with_rate_headers(mut response: Response, decision: &ThrottleDecision) -> Response {
    let headers = response.headers_mut();
    if let Ok(name) = HeaderName::from_bytes(decision.arm_header.0.as_bytes()) {
        headers.insert(name, HeaderValue::from(decision.arm_header.1));
    }
    if let Ok(value) = HeaderValue::from_str(&decision.resource_header) {
        headers.insert("x-ms-ratelimit-remaining-resource", value);
    }
    response
}

fn with_headers(mut response: Response, extra: Vec<(HeaderName, String)>) -> Response {
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn api_version(query: &HashMap<String, String>) -> String {
    query.get("api-version").cloned().unwrap_or_default()
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

fn expands(query: &HashMap<String, String>, what: &str) -> bool {
    query.get("$expand").is_some_and(|value| {
        value
            .split(',')
            .any(|part| part.trim().eq_ignore_ascii_case(what))
    })
}

// ----- wire mapping -----

fn provisioning_status(view: &VmView, now: Timestamp) -> InstanceViewStatus {
    let state = view.provisioning.as_str();
    let display = match view.provisioning {
        spotkit_core::compute::ProvisioningState::Succeeded => "Provisioning succeeded".to_owned(),
        other => other.as_str().to_owned(),
    };
    InstanceViewStatus {
        code: Some(format!("ProvisioningState/{}", state.to_ascii_lowercase())),
        level: Some("Info".to_owned()),
        display_status: Some(display),
        message: None,
        time: Some(rfc3339(now)),
    }
}

/// The instance view ARM would report for `view`.
#[must_use]
pub fn instance_view(view: &VmView, now: Timestamp) -> InstanceView {
    let power = view.power;
    let mut statuses = vec![provisioning_status(view, now)];
    if power != PowerState::Unknown {
        statuses.push(InstanceViewStatus {
            code: Some(format!("PowerState/{}", power.code_suffix())),
            level: Some("Info".to_owned()),
            display_status: Some(format!("VM {}", power.code_suffix())),
            message: None,
            time: None,
        });
    }
    InstanceView {
        computer_name: Some(view.spec.name.clone()),
        os_name: Some("ubuntu".to_owned()),
        hyper_v_generation: Some("V2".to_owned()),
        disks: Some(vec![DiskInstanceView {
            name: Some(os_disk_name(view)),
            statuses: vec![InstanceViewStatus {
                code: Some("ProvisioningState/succeeded".to_owned()),
                level: Some("Info".to_owned()),
                display_status: Some("Provisioning succeeded".to_owned()),
                message: None,
                time: Some(rfc3339(view.created_at)),
            }],
        }]),
        statuses,
        other: Map::new(),
    }
}

fn os_disk_name(view: &VmView) -> String {
    format!(
        "{}_OsDisk_1_{}",
        view.spec.name,
        &view.vm_id.replace('-', "")[..12]
    )
}

fn image_reference(image: &str) -> Value {
    let parts: Vec<&str> = image.split(':').collect();
    match parts.as_slice() {
        [publisher, offer, sku, version] => {
            json!({ "publisher": publisher, "offer": offer, "sku": sku, "version": version })
        }
        _ => json!({ "id": image }),
    }
}

/// The ARM model of `view` (with its instance view if asked).
#[must_use]
pub fn vm_wire(
    view: &VmView,
    with_instance_view: bool,
    with_user_data: bool,
    now: Timestamp,
) -> VirtualMachine {
    let mut properties: VirtualMachineProperties =
        serde_json::from_value(view.properties.clone()).unwrap_or_default();
    let spot = view.spec.priority == Priority::Spot;
    properties.vm_id = Some(view.vm_id.clone());
    let mut hardware = properties.hardware_profile.take().unwrap_or_default();
    hardware.vm_size = Some(view.spec.offering.size.clone());
    properties.hardware_profile = Some(hardware);
    properties.priority = Some(if spot { "Spot" } else { "Regular" }.to_owned());
    properties.eviction_policy = spot.then(|| {
        match view
            .spec
            .eviction_policy
            .unwrap_or(EvictionPolicy::Deallocate)
        {
            EvictionPolicy::Delete => "Delete",
            EvictionPolicy::Deallocate => "Deallocate",
        }
        .to_owned()
    });
    properties.billing_profile = spot.then(|| super::wire::BillingProfile {
        max_price: Some(
            view.spec
                .max_price
                .unwrap_or(MaxPrice::CappedAtPayAsYouGo)
                .to_arm(),
        ),
    });
    let mut storage = match properties.storage_profile.take() {
        Some(Value::Object(storage)) => storage,
        _ => Map::new(),
    };
    storage
        .entry("imageReference")
        .or_insert_with(|| image_reference(&view.spec.image));
    let disk_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/disks/{}",
        view.subscription,
        view.spec.resource_group,
        os_disk_name(view)
    );
    let os_disk = storage.entry("osDisk").or_insert_with(|| json!({}));
    if let Value::Object(disk) = os_disk {
        disk.entry("osType").or_insert_with(|| json!("Linux"));
        disk.entry("name")
            .or_insert_with(|| json!(os_disk_name(view)));
        disk.entry("createOption")
            .or_insert_with(|| json!("FromImage"));
        disk.entry("caching").or_insert_with(|| json!("ReadWrite"));
        let managed = disk
            .entry("managedDisk")
            .or_insert_with(|| json!({ "storageAccountType": "Premium_LRS" }));
        if let Value::Object(managed) = managed {
            managed.insert("id".to_owned(), json!(disk_id));
        }
        disk.entry("diskSizeGB")
            .or_insert_with(|| json!(view.os_disk_gib));
    }
    properties.storage_profile = Some(Value::Object(storage));
    if let Some(Value::Object(os)) = properties.os_profile.as_mut() {
        // ARM never returns secrets.
        os.remove("adminPassword");
        os.remove("customData");
    }
    if !with_user_data {
        properties.user_data = None;
    }
    properties.provisioning_state = Some(view.provisioning.as_str().to_owned());
    properties.time_created = Some(rfc3339(view.created_at));
    properties.instance_view = with_instance_view.then(|| instance_view(view, now));
    VirtualMachine {
        name: Some(view.spec.name.clone()),
        id: Some(view.arm_id()),
        resource_type: Some("Microsoft.Compute/virtualMachines".to_owned()),
        location: view.spec.offering.region.clone(),
        tags: Some(view.spec.tags.clone()),
        zones: view.zone.clone().map(|zone| vec![zone]),
        identity: None,
        properties: Some(properties),
        other: Map::new(),
    }
}

/// Reads a PUT body into the model's request.
///
/// # Errors
/// ARM's 400 codes (`InvalidRequestContent`, `InvalidParameter`) with a message.
pub fn parse_put(
    subscription: &str,
    resource_group: &str,
    name: &str,
    body: &[u8],
) -> Result<CreateVm, (String, String)> {
    let raw: Value = serde_json::from_slice(body).map_err(|error| {
        (
            "InvalidRequestContent".to_owned(),
            format!("The request content was invalid and could not be deserialized: {error}"),
        )
    })?;
    let vm: VirtualMachine = serde_json::from_value(raw.clone()).map_err(|error| {
        (
            "InvalidRequestContent".to_owned(),
            format!("The request content was invalid and could not be deserialized: {error}"),
        )
    })?;
    let invalid = |message: String| ("InvalidParameter".to_owned(), message);
    let properties = vm.properties.clone().unwrap_or_default();
    let size = properties
        .hardware_profile
        .as_ref()
        .and_then(|hardware| hardware.vm_size.clone())
        .ok_or_else(|| {
            invalid("Required parameter 'hardwareProfile.vmSize' is missing (null).".to_owned())
        })?;
    let priority = match properties.priority.as_deref() {
        None => Priority::Regular,
        Some(value) if value.eq_ignore_ascii_case("regular") => Priority::Regular,
        Some(value) if value.eq_ignore_ascii_case("spot") || value.eq_ignore_ascii_case("low") => {
            Priority::Spot
        }
        Some(other) => {
            return Err(invalid(format!(
                "The value '{other}' of parameter 'priority' is not allowed. Allowed values are 'Regular', 'Low', 'Spot'."
            )));
        }
    };
    let eviction_policy = match (priority, properties.eviction_policy.as_deref()) {
        (Priority::Regular, None) => None,
        (Priority::Regular, Some(_)) => {
            return Err(invalid(
                "Eviction policy can be set only on Azure Spot Virtual Machines.".to_owned(),
            ));
        }
        (Priority::Spot, None) => Some(EvictionPolicy::Deallocate),
        (Priority::Spot, Some(value)) if value.eq_ignore_ascii_case("delete") => {
            Some(EvictionPolicy::Delete)
        }
        (Priority::Spot, Some(value)) if value.eq_ignore_ascii_case("deallocate") => {
            Some(EvictionPolicy::Deallocate)
        }
        (Priority::Spot, Some(other)) => {
            return Err(invalid(format!(
                "The value '{other}' of parameter 'evictionPolicy' is not allowed. Allowed values are 'Deallocate', 'Delete'."
            )));
        }
    };
    let max_price = match (
        priority,
        properties
            .billing_profile
            .and_then(|billing| billing.max_price),
    ) {
        (Priority::Regular, Some(_)) => {
            return Err(invalid(
                "Max price can be set only on Azure Spot Virtual Machines.".to_owned(),
            ));
        }
        (Priority::Regular, None) => None,
        (Priority::Spot, None) => Some(MaxPrice::CappedAtPayAsYouGo),
        (Priority::Spot, Some(value)) if value < 0.0 && value != -1.0 => {
            return Err((
                "MaxPriceValueInvalid".to_owned(),
                format!(
                    "The max price '{value}' is invalid: use -1 or a price in USD of up to 5 decimals."
                ),
            ));
        }
        (Priority::Spot, Some(value)) => Some(MaxPrice::from_arm(value)),
    };
    let image = properties
        .storage_profile
        .as_ref()
        .and_then(|storage| storage.get("imageReference"))
        .map(|reference| {
            if let Some(id) = reference.get("id").and_then(Value::as_str) {
                return id.to_owned();
            }
            ["publisher", "offer", "sku", "version"]
                .iter()
                .map(|key| reference.get(key).and_then(Value::as_str).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default();
    let user_data = properties.user_data.clone().or_else(|| {
        properties
            .os_profile
            .as_ref()
            .and_then(|os| os.get("customData"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let user_assigned_identities = vm
        .identity
        .as_ref()
        .and_then(|identity| identity.get("userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|identities| identities.keys().cloned().collect())
        .unwrap_or_default();
    Ok(CreateVm {
        subscription: subscription.to_owned(),
        spec: VmSpec {
            name: name.to_owned(),
            resource_group: resource_group.to_owned(),
            offering: OfferingId::new(size, vm.location.replace(' ', "").to_ascii_lowercase()),
            priority,
            eviction_policy,
            max_price,
            image,
            user_data,
            user_assigned_identities,
            tags: vm.tags.unwrap_or_default(),
        },
        zone: vm.zones.and_then(|zones| zones.into_iter().next()),
        properties: raw.get("properties").cloned().unwrap_or(Value::Null),
    })
}

// ----- ARM handlers -----

type VmPath = Path<(String, String, String)>;
type Params = Query<HashMap<String, String>>;

async fn put_vm(
    State(server): State<SimServer>,
    Path((sub, rg, name)): VmPath,
    Query(query): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    server.clone().arm(
        &sub,
        &headers,
        &query,
        ThrottleCategory::PutVm,
        Some(&name),
        |now| {
            let request = match parse_put(&sub, &rg, &name, &body) {
                Ok(request) => request,
                Err((code, message)) => {
                    return arm_error(StatusCode::BAD_REQUEST, &code, &message, Vec::new());
                }
            };
            let outcome = lock(&server.inner.cloud).create_or_update(request, now);
            match outcome {
                Ok(outcome) => {
                    let body = vm_wire(&outcome.vm, false, false, now);
                    match (outcome.created, outcome.op) {
                        (true, Some(op)) => with_headers(
                            json_body(StatusCode::CREATED, &body),
                            server.lro_headers(&headers, &sub, &op, &api_version(&query), false),
                        ),
                        _ => json_body(StatusCode::OK, &body),
                    }
                }
                Err(error) => sim_error(&error),
            }
        },
    )
}

fn find_vm(
    server: &SimServer,
    sub: &str,
    rg: &str,
    name: &str,
    now: Timestamp,
) -> Result<VmView, SimError> {
    let view = lock(&server.inner.cloud).get(rg, name, now)?;
    if view.subscription.eq_ignore_ascii_case(sub) {
        Ok(view)
    } else {
        Err(SimError::NotFound {
            resource_group: rg.to_owned(),
            name: name.to_owned(),
        })
    }
}

async fn get_vm(
    State(server): State<SimServer>,
    Path((sub, rg, name)): VmPath,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    server.arm(
        &sub,
        &headers,
        &query,
        ThrottleCategory::LowCostGet,
        Some(&name),
        |now| match find_vm(&server, &sub, &rg, &name, now) {
            Ok(view) => json_body(
                StatusCode::OK,
                &vm_wire(
                    &view,
                    expands(&query, "instanceView"),
                    expands(&query, "userData"),
                    now,
                ),
            ),
            Err(error) => sim_error(&error),
        },
    )
}

async fn get_instance_view(
    State(server): State<SimServer>,
    Path((sub, rg, name)): VmPath,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    server.arm(
        &sub,
        &headers,
        &query,
        ThrottleCategory::LowCostGet,
        Some(&name),
        |now| match find_vm(&server, &sub, &rg, &name, now) {
            Ok(view) => json_body(StatusCode::OK, &instance_view(&view, now)),
            Err(error) => sim_error(&error),
        },
    )
}

fn lro_answer(
    server: &SimServer,
    headers: &HeaderMap,
    sub: &str,
    query: &HashMap<String, String>,
    op: &OpView,
) -> Response {
    if op.status == OpStatus::InProgress {
        with_headers(
            StatusCode::ACCEPTED.into_response(),
            server.lro_headers(headers, sub, op, &api_version(query), true),
        )
    } else {
        StatusCode::OK.into_response()
    }
}

async fn start_vm(
    State(server): State<SimServer>,
    Path((sub, rg, name)): VmPath,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    power_operation(
        &server,
        (&sub, &rg, &name),
        &query,
        &headers,
        ThrottleCategory::UpdateVm,
        SpotCloud::start,
    )
}

/// Start or deallocate: an existing VM, one long-running operation, the same answers.
fn power_operation(
    server: &SimServer,
    (sub, rg, name): (&str, &str, &str),
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    category: ThrottleCategory,
    operation: fn(&mut SpotCloud, &str, &str, Timestamp) -> Result<OpView, SimError>,
) -> Response {
    server.arm(sub, headers, query, category, Some(name), |now| {
        if let Err(error) = find_vm(server, sub, rg, name, now) {
            return sim_error(&error);
        }
        let result = operation(&mut lock(&server.inner.cloud), rg, name, now);
        match result {
            Ok(op) => lro_answer(server, headers, sub, query, &op),
            Err(error) => sim_error(&error),
        }
    })
}

async fn deallocate_vm(
    State(server): State<SimServer>,
    Path((sub, rg, name)): VmPath,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    power_operation(
        &server,
        (&sub, &rg, &name),
        &query,
        &headers,
        ThrottleCategory::DeleteVm,
        SpotCloud::deallocate,
    )
}

async fn delete_vm(
    State(server): State<SimServer>,
    Path((sub, rg, name)): VmPath,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    server.arm(
        &sub,
        &headers,
        &query,
        ThrottleCategory::DeleteVm,
        Some(&name),
        |now| {
            if find_vm(&server, &sub, &rg, &name, now).is_err() {
                return StatusCode::NO_CONTENT.into_response();
            }
            let result = lock(&server.inner.cloud).delete(&rg, &name, now);
            match result {
                Ok(Some(op)) => lro_answer(&server, &headers, &sub, &query, &op),
                Ok(None) => StatusCode::NO_CONTENT.into_response(),
                Err(error) => sim_error(&error),
            }
        },
    )
}

async fn simulate_eviction(
    State(server): State<SimServer>,
    Path((sub, rg, name)): VmPath,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    server.arm(
        &sub,
        &headers,
        &query,
        ThrottleCategory::DeleteVm,
        Some(&name),
        |now| {
            if let Err(error) = find_vm(&server, &sub, &rg, &name, now) {
                return sim_error(&error);
            }
            let result = lock(&server.inner.cloud).simulate_eviction(&rg, &name, now);
            match result {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(error) => sim_error(&error),
            }
        },
    )
}

/// Which VMs a list shows and how.
struct ListScope<'a> {
    subscription: &'a str,
    resource_group: Option<&'a str>,
    with_instance_view: bool,
}

fn list_page(
    server: &SimServer,
    headers: &HeaderMap,
    path: &str,
    query: &HashMap<String, String>,
    scope: &ListScope<'_>,
    now: Timestamp,
) -> Response {
    let (sub, resource_group, with_instance_view) = (
        scope.subscription,
        scope.resource_group,
        scope.with_instance_view,
    );
    let vms: Vec<VmView> = lock(&server.inner.cloud)
        .list(resource_group, now)
        .into_iter()
        .filter(|view| view.subscription.eq_ignore_ascii_case(sub))
        .collect();
    let skip: usize = query
        .get("$skiptoken")
        .and_then(|token| token.parse().ok())
        .unwrap_or(0);
    let page_size = server.inner.page_size;
    let value = vms
        .iter()
        .skip(skip)
        .take(page_size)
        .map(|view| vm_wire(view, with_instance_view, false, now))
        .collect();
    let next = skip + page_size;
    let next_link = (next < vms.len()).then(|| {
        let mut link = format!(
            "{}{path}?api-version={}",
            base_url(headers),
            api_version(query)
        );
        if with_instance_view && resource_group.is_none() {
            link.push_str("&statusOnly=true");
        }
        link.push_str(&format!("&$skiptoken={next}"));
        link
    });
    json_body(
        StatusCode::OK,
        &VirtualMachineListResult { value, next_link },
    )
}

async fn list_group(
    State(server): State<SimServer>,
    Path((sub, rg)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    server.arm(&sub, &headers, &query, ThrottleCategory::HighCostGet, None, |now| {
        let path = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines");
        list_page(
            &server,
            &headers,
            &path,
            &query,
            &ListScope {
                subscription: &sub,
                resource_group: Some(&rg),
                with_instance_view: false,
            },
            now,
        )
    })
}

async fn list_subscription(
    State(server): State<SimServer>,
    Path(sub): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    server.arm(
        &sub,
        &headers,
        &query,
        ThrottleCategory::HighCostGet,
        None,
        |now| {
            let path = format!("/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines");
            let status_only = flag(&query, "statusOnly");
            list_page(
                &server,
                &headers,
                &path,
                &query,
                &ListScope {
                    subscription: &sub,
                    resource_group: None,
                    with_instance_view: status_only,
                },
                now,
            )
        },
    )
}

async fn operation_status(
    State(server): State<SimServer>,
    Path((sub, _location, id)): Path<(String, String, String)>,
    Query(query): Params,
    headers: HeaderMap,
) -> Response {
    server.arm(
        &sub,
        &headers,
        &query,
        ThrottleCategory::GetOperation,
        Some(&id),
        |now| {
            let Some(op) = lock(&server.inner.cloud).operation(&id, now) else {
                return arm_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("The operation '{id}' was not found."),
                    Vec::new(),
                );
            };
            let error = op.error.as_ref().map(|(code, message)| ApiError {
                code: code.clone(),
                message: message.clone(),
                target: None,
                details: Vec::new(),
            });
            if flag(&query, "monitor") {
                return match op.status {
                    OpStatus::InProgress => lro_answer(&server, &headers, &sub, &query, &op),
                    OpStatus::Succeeded if op.kind == OpKind::Delete => {
                        StatusCode::NO_CONTENT.into_response()
                    }
                    OpStatus::Succeeded => StatusCode::OK.into_response(),
                    OpStatus::Failed | OpStatus::Canceled => {
                        let error = error.unwrap_or(ApiError {
                            code: "Canceled".to_owned(),
                            message: "The operation was canceled.".to_owned(),
                            target: None,
                            details: Vec::new(),
                        });
                        arm_error(
                            StatusCode::CONFLICT,
                            &error.code,
                            &error.message,
                            Vec::new(),
                        )
                    }
                };
            }
            let body = OperationStatus {
                name: op.id.clone(),
                status: op.status.as_str().to_owned(),
                start_time: rfc3339(op.started_at),
                end_time: (op.status != OpStatus::InProgress).then(|| rfc3339(op.completes_at)),
                error,
            };
            let response = json_body(StatusCode::OK, &body);
            if op.status == OpStatus::InProgress {
                with_headers(
                    response,
                    vec![(header::RETRY_AFTER, server.inner.retry_after.to_string())],
                )
            } else {
                response
            }
        },
    )
}

async fn vm_imds(
    State(server): State<SimServer>,
    Path((name, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let now = server.now();
    let model = {
        let mut cloud = lock(&server.inner.cloud);
        cloud.advance_to(now);
        cloud.imds_by_name(&name)
    };
    match model {
        Ok(model) => {
            let clock: Arc<dyn Clock> = server.clock();
            ImdsEmulator::from_shared(model, clock)
                .handle_metadata(method, &format!("/{rest}"), headers, query, body)
                .await
        }
        Err(0) => json_body(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("no simulated VM is named {name} (deleted, evicted with Delete, or never created)") }),
        ),
        Err(count) => json_body(
            StatusCode::CONFLICT,
            &json!({ "error": format!("{count} simulated VMs are named {name} (in different resource groups); give them unique names to reach their IMDS") }),
        ),
    }
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> Response {
    arm_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!(
            "The simulator serves no {method} {}. See crates/spotkit-sim/SIMULATOR.md for its routes.",
            uri.path()
        ),
        Vec::new(),
    )
}

// ----- admin -----

async fn admin_bill(State(server): State<SimServer>) -> Response {
    let now = server.now();
    let bill = lock(&server.inner.cloud).bill(now);
    json_body(StatusCode::OK, &bill)
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    since: usize,
}

async fn admin_log(State(server): State<SimServer>, Query(query): Query<LogQuery>) -> Response {
    let now = server.now();
    let mut cloud = lock(&server.inner.cloud);
    cloud.advance_to(now);
    let log = cloud.log();
    let entries = log.get(query.since.min(log.len())..).unwrap_or_default();
    json_body(
        StatusCode::OK,
        &json!({ "entries": entries, "next": log.len() }),
    )
}

fn time_body(server: &SimServer) -> Value {
    let now = server.now();
    let start = lock(&server.inner.cloud).start_time();
    json!({
        "now_unix_ms": now.unix_millis(),
        "now": rfc3339(now),
        "start_unix_ms": start.unix_millis(),
        "elapsed_seconds": now.since(start).as_secs_f64(),
        "speed": server.inner.clock.speed(),
    })
}

async fn admin_time(State(server): State<SimServer>) -> Response {
    json_body(StatusCode::OK, &time_body(&server))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeedBody {
    speed: f64,
}

async fn admin_speed(State(server): State<SimServer>, body: Bytes) -> Response {
    match serde_json::from_slice::<SpeedBody>(&body) {
        Ok(SpeedBody { speed }) if speed.is_finite() && speed >= 0.0 => {
            server.inner.clock.set_speed(speed);
            json_body(StatusCode::OK, &time_body(&server))
        }
        Ok(_) => admin_refusal("speed must be a finite number >= 0"),
        Err(error) => admin_refusal(&format!("expected {{\"speed\": 60}}: {error}")),
    }
}

fn admin_refusal(message: &str) -> Response {
    json_body(StatusCode::BAD_REQUEST, &json!({ "error": message }))
}

/// The catalog snapshot as JSON (the catalog facade serves Azure's shapes; this is the raw view).
#[must_use]
pub fn catalog_json(snapshot: &CatalogSnapshot) -> Value {
    json!({
        "at_unix_ms": snapshot.at.unix_millis(),
        "regions": snapshot.regions.iter().map(|region| json!({
            "name": region.name, "display_name": region.display_name, "zones": region.zones,
        })).collect::<Vec<_>>(),
        "sizes": snapshot.sizes.iter().map(|size| json!({
            "name": size.name, "family": size.family, "vcpus": size.vcpus,
            "memory_gib": size.memory_gib, "spot_capable": size.spot_capable,
        })).collect::<Vec<_>>(),
        "offerings": snapshot.offerings.iter().map(|offering| json!({
            "size": offering.size, "region": offering.region,
            "payg_linux": offering.payg_linux, "payg_windows": offering.payg_windows,
            "spot_linux": offering.spot_linux, "spot_windows": offering.spot_windows,
            "spot_price_history": offering.spot_price_history.iter()
                .map(|(at, price)| json!([at.unix_millis(), price])).collect::<Vec<_>>(),
            "band": offering.band.map(|band| format!("{band:?}")),
            "placement": format!("{:?}", offering.placement),
            "spot_capacity_vms": offering.spot_capacity_vms,
        })).collect::<Vec<_>>(),
        "quotas": snapshot.quotas.iter().map(|quota| json!({
            "region": quota.region, "family": quota.family,
            "limit_vcpus": quota.limit_vcpus, "used_vcpus": quota.used_vcpus,
        })).collect::<Vec<_>>(),
    })
}

async fn admin_catalog(State(server): State<SimServer>) -> Response {
    let now = server.now();
    let snapshot = lock(&server.inner.cloud).catalog(now);
    json_body(StatusCode::OK, &catalog_json(&snapshot))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectBody {
    kind: ScriptedKind,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    notice_seconds: Option<f64>,
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    for_seconds: Option<f64>,
    #[serde(default)]
    spot: Option<f64>,
}

async fn admin_event(State(server): State<SimServer>, body: Bytes) -> Response {
    let body: InjectBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => return admin_refusal(&format!("not an event: {error}")),
    };
    let seconds = |value: Option<f64>| {
        value
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    };
    match body.kind {
        ScriptedKind::Capacity if body.capacity.is_none() => {
            return admin_refusal("a capacity event needs `capacity`");
        }
        ScriptedKind::Price if body.spot.is_none() => {
            return admin_refusal("a price event needs `spot`");
        }
        _ => {}
    }
    let event = ScriptedEvent {
        at: Duration::ZERO,
        kind: body.kind,
        region: body.region,
        size: body.size,
        count: body.count,
        notice: seconds(body.notice_seconds),
        capacity: body.capacity,
        duration: seconds(body.for_seconds),
        spot: body.spot,
    };
    let now = server.now();
    let mut cloud = lock(&server.inner.cloud);
    let from = cloud.log().len();
    cloud.inject(&event, now);
    let entries = cloud.log()[from..].to_vec();
    json_body(StatusCode::CREATED, &json!({ "entries": entries }))
}

async fn admin_fault(State(server): State<SimServer>, body: Bytes) -> Response {
    match serde_json::from_slice::<InjectedFault>(&body) {
        Ok(fault) if (400..=599).contains(&fault.status) => {
            server.push_fault(fault);
            let pending = lock(&server.inner.faults)
                .iter()
                .map(|fault| fault.count)
                .sum::<u32>();
            json_body(StatusCode::CREATED, &json!({ "pending_requests": pending }))
        }
        Ok(_) => admin_refusal("status must be 400..=599"),
        Err(error) => admin_refusal(&format!("expected {{\"status\":429,\"count\":3}}: {error}")),
    }
}

async fn admin_vms(State(server): State<SimServer>, headers: HeaderMap) -> Response {
    let now = server.now();
    let vms = lock(&server.inner.cloud).list(None, now);
    let base = base_url(&headers);
    let body: Vec<Value> = vms
        .iter()
        .map(|view| {
            json!({
                "name": view.spec.name,
                "resource_group": view.spec.resource_group,
                "id": view.arm_id(),
                "offering": view.spec.offering.to_string(),
                "priority": format!("{:?}", view.spec.priority),
                "power": view.power.code_suffix(),
                "provisioning": view.provisioning.as_str(),
                "eviction_not_before_unix_ms": view.eviction_not_before.map(Timestamp::unix_millis),
                "evictions": view.evictions,
                "imds_url": format!("{base}/vm/{}", view.spec.name),
            })
        })
        .collect();
    json_body(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::VirtualClock;

    #[test]
    fn scaled_clock_runs_speed_times_faster_and_re_anchors_on_a_speed_change() {
        let start = Timestamp::from_unix_secs(1_000);
        let real = Arc::new(VirtualClock::manual(Timestamp::from_unix_secs(50)));
        let clock = ScaledClock::new(real.clone(), start, 60.0);
        assert_eq!(clock.now(), start);
        real.advance(Duration::from_secs(2));
        assert_eq!(clock.now(), start.plus(Duration::from_secs(120)));
        clock.set_speed(1.0);
        assert_eq!(clock.now(), start.plus(Duration::from_secs(120)));
        real.advance(Duration::from_secs(3));
        assert_eq!(clock.now(), start.plus(Duration::from_secs(123)));
        clock.set_speed(0.0);
        real.advance(Duration::from_secs(100));
        assert_eq!(clock.now(), start.plus(Duration::from_secs(123)));
    }
}
