//! Why the simulated cloud refused an operation, with ARM's codes and statuses.

use spotkit_cloud::{CapacityErrorCode, ComputeError};
use spotkit_core::compute::OfferingId;

/// A refused operation. [`SimError::arm_code`] and [`SimError::http_status`] give what ARM
/// would answer; [`SimError::to_compute_error`] the typed error of the `ComputeCloud` seam.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SimError {
    /// No such VM.
    #[error(
        "The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )]
    NotFound {
        /// Resource group.
        resource_group: String,
        /// VM name.
        name: String,
    },
    /// No capacity (or the size is not sold here, or max price below the spot price).
    #[error("{message}")]
    Capacity {
        /// ARM's code.
        code: CapacityErrorCode,
        /// Where.
        offering: OfferingId,
        /// ARM's message.
        message: String,
    },
    /// A vCPU quota would be exceeded (`OperationNotAllowed`).
    #[error("{message}")]
    Quota {
        /// Where.
        offering: OfferingId,
        /// ARM's message, naming the quota.
        message: String,
    },
    /// The VM's state or another operation forbids this now (`OperationNotAllowed`, 409).
    #[error("{message}")]
    Conflict {
        /// VM name.
        name: String,
        /// ARM's message.
        message: String,
    },
    /// The request itself is wrong (400).
    #[error("{message}")]
    Invalid {
        /// ARM's code, e.g. `AzureSpotIsNotSupportedForThisVMSize`.
        code: String,
        /// ARM's message.
        message: String,
    },
}

impl SimError {
    /// ARM's `error.code`.
    #[must_use]
    pub fn arm_code(&self) -> &str {
        match self {
            SimError::NotFound { .. } => "ResourceNotFound",
            SimError::Capacity { code, .. } => code.as_str(),
            SimError::Quota { .. } | SimError::Conflict { .. } => "OperationNotAllowed",
            SimError::Invalid { code, .. } => code,
        }
    }

    /// The HTTP status ARM answers with.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            SimError::NotFound { .. } => 404,
            SimError::Capacity { .. } | SimError::Quota { .. } | SimError::Conflict { .. } => 409,
            SimError::Invalid { .. } => 400,
        }
    }

    /// The typed error the `ComputeCloud` seam reports for it.
    #[must_use]
    pub fn to_compute_error(&self) -> ComputeError {
        match self {
            SimError::NotFound { name, .. } => ComputeError::NotFound { name: name.clone() },
            SimError::Capacity {
                code,
                offering,
                message,
            } => ComputeError::Capacity {
                offering: offering.clone(),
                code: *code,
                message: message.clone(),
            },
            SimError::Quota { offering, message } => ComputeError::QuotaExceeded {
                offering: offering.clone(),
                message: message.clone(),
            },
            SimError::Conflict { name, message } => ComputeError::Conflict {
                name: name.clone(),
                message: message.clone(),
            },
            SimError::Invalid { code, message } => ComputeError::Invalid {
                code: code.clone(),
                message: message.clone(),
            },
        }
    }
}
