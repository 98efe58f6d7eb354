//! Roles and the permissions they grant. Reads and destructive actions are separate
//! permissions, and billing permissions are never implied by any other area's.

use std::fmt;
use std::str::FromStr;

/// A member's role in an org and all its descendants, least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads invoices and reports.
    Viewer,
    /// Also creates invoices and sees billing.
    Manager,
    /// Everything, including destructive actions.
    Owner,
}

/// One thing a caller may do; [`Role::permits`] is the one table of who may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Reading invoices.
    InvoicesView,
    /// Creating and changing invoices.
    InvoicesManage,
    /// Voiding invoices: destructive, owners only.
    InvoicesVoid,
    /// Payments and invoice attachments follow billing permissions, not invoice ones.
    BillingView,
    /// Recording payments.
    BillingManage,
    /// Revenue reports and dashboards.
    ReportsView,
}

impl Permission {
    /// Its stable name (`invoices.view`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvoicesView => "invoices.view",
            Self::InvoicesManage => "invoices.manage",
            Self::InvoicesVoid => "invoices.void",
            Self::BillingView => "billing.view",
            Self::BillingManage => "billing.manage",
            Self::ReportsView => "reports.view",
        }
    }
}

impl Role {
    /// Its stored name (`viewer`, `manager`, `owner`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Manager => "manager",
            Self::Owner => "owner",
        }
    }

    /// The one table of who may do what.
    pub fn permits(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Manager => matches!(p, InvoicesView | InvoicesManage | BillingView | BillingManage | ReportsView),
            Role::Viewer => matches!(p, InvoicesView | BillingView | ReportsView),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Self::Owner),
            "manager" => Ok(Self::Manager),
            "viewer" => Ok(Self::Viewer),
            other => Err(format!("role must be owner, manager or viewer, got {other:?}")),
        }
    }
}
