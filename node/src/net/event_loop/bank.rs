//! The event loop's side of bank accounts: API bank commands, run against
//! the store (imports are disk work, run in `blocking`).

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{blocking, EventLoop};
use crate::api::ApiError;
use crate::bank::{self, store as bank_store, ImportError, OperationView};
use crate::net::{BankOp, BankReply};

fn json<T: serde::Serialize>(value: T) -> Result<BankReply, ApiError> {
    serde_json::to_value(value).map(BankReply::Json).map_err(ApiError::internal)
}

/// The API error of an import error: the person's file is at fault (400),
/// a conflicting id is a 409, the database a 500.
fn import_error(err: ImportError) -> ApiError {
    match err {
        ImportError::Store(_) => ApiError::internal(err),
        ImportError::Conflict { .. } => ApiError::conflict(err.to_string()),
        _ => ApiError::bad_request(err.to_string()),
    }
}

impl EventLoop {
    pub(super) fn on_bank_command(&mut self, op: BankOp, reply: oneshot::Sender<Result<BankReply, ApiError>>) {
        let result = self.bank_command(op);
        let _ = reply.send(result);
    }

    fn account(&self, name: &str) -> Result<bank_store::AccountRecord, ApiError> {
        bank_store::find_account(&self.store, name)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no bank account named {name:?}; see `hearth bank accounts`")))
    }

    fn bank_command(&mut self, op: BankOp) -> Result<BankReply, ApiError> {
        match op {
            BankOp::Import { bytes, options } => {
                let store = self.store.clone();
                let result = blocking(move || {
                    let parsed = bank::parse_file(&bytes, &options)?;
                    bank_store::import(&store, parsed, options.account.as_deref())
                });
                match result {
                    Ok(imported) => {
                        for a in &imported.report.accounts {
                            info!(account = %a.id, "bank import: {} added, {} already known", a.added, a.duplicates);
                        }
                        json(imported.report)
                    }
                    Err(err) => {
                        warn!("bank import refused: {err}");
                        Err(import_error(err))
                    }
                }
            }
            BankOp::Accounts => {
                let all = bank_store::accounts(&self.store).map_err(ApiError::internal)?;
                json(all.iter().map(|a| a.view()).collect::<Vec<_>>())
            }
            BankOp::Operations { account, since } => {
                let since = since
                    .map(|s| s.parse::<bank::Date>().map_err(|e| ApiError::bad_request(format!("--since: {e}"))))
                    .transpose()?;
                let record = self.account(&account)?;
                let ops = blocking(|| bank_store::operations(&self.store, &record.account.id, since))
                    .map_err(ApiError::internal)?;
                json(ops.iter().map(OperationView::of).collect::<Vec<_>>())
            }
            BankOp::Export { account } => {
                let record = self.account(&account)?;
                let ops = blocking(|| bank_store::operations(&self.store, &record.account.id, None))
                    .map_err(ApiError::internal)?;
                let doc = bank::cozy::export(&record.account, &ops);
                serde_json::to_string_pretty(&doc).map(BankReply::JsonText).map_err(ApiError::internal)
            }
        }
    }
}
