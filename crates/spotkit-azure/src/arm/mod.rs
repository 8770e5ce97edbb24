//! Azure Resource Manager over its REST API: credentials, a throttle-aware client, long-running
//! operations, and the Compute, Resource SKUs, Resource Graph and Spot Placement Score calls.

pub mod credential;
