//! Roles and the permissions they grant. Reads and destructive actions are separate
//! permissions, and billing permissions are never implied by any other area's.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Manager,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    InvoicesView,
    InvoicesManage,
    /// Voiding invoices: destructive, owners only.
    InvoicesVoid,
    /// Payments and invoice attachments follow billing permissions, not invoice ones.
    BillingView,
    BillingManage,
    ReportsView,
}

impl Permission {
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
