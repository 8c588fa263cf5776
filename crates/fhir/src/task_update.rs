//! Reads what a client asks of a Task: a new status and, perhaps, why. Whether the move
//! is allowed is the referral state machine's decision, not this module's.

use crate::datatypes::{SNOMED, text};
use crate::task::decline_from_code;
use kith_domain::referral::{DeclineReason, TaskStatus, snomed};
use serde_json::Value;

/// Why a Task update could not be read, with what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskUpdateError {
    #[error("Send the Task resource (\"resourceType\": \"Task\") with its new status, or a JSON Patch array")]
    NotATask,
    #[error("This is a {0}, not a Task: send the Task with its new status")]
    WrongResource(String),
    #[error("The Task needs a status, one of: {codes}", codes = status_codes())]
    MissingStatus,
    #[error("{0} is not a Task status Kith uses; use one of: {codes}", codes = status_codes())]
    UnknownStatus(String),
    #[error("statusReason must be a CodeableConcept, like {{\"text\": \"No space just now\"}}")]
    BadReason,
    #[error("note must be a list of annotations, like [{{\"text\": \"No space just now\"}}]")]
    BadNote,
    #[error("Only /status and /statusReason can be changed, not {0}")]
    ReadOnlyPath(String),
    #[error(
        "Patch operation {0} needs an \"op\" and a \"path\", like {{\"op\": \"replace\", \"path\": \"/status\", \"value\": \"accepted\"}}"
    )]
    BadOperation(usize),
    #[error("Kith cannot apply \"{0}\" patch operations; use \"replace\" on /status and /statusReason")]
    UnsupportedOperation(String),
    #[error("The patch needs to replace /status with one of: {codes}", codes = status_codes())]
    PatchWithoutStatus,
}

fn status_codes() -> String {
    TaskStatus::ALL.iter().map(|s| s.code()).collect::<Vec<_>>().join(", ")
}

/// The status a client asks for, and the reason they give, from the body of a Task
/// update: either the whole Task (`status`, and `statusReason` or else the first
/// `note` as the reason) or a JSON Patch that replaces `/status` and optionally
/// `/statusReason` or `/statusReason/text`. A reason coded rather than written (SNOMED CT
/// "Social prescribing declined", or a `kith-decline-reason` code) reads as its label.
pub fn requested_status(body: &Value) -> Result<(TaskStatus, Option<String>), TaskUpdateError> {
    match body {
        Value::Array(ops) => from_patch(ops),
        Value::Object(task) => {
            match task.get("resourceType").and_then(Value::as_str) {
                Some("Task") => {}
                Some(other) => return Err(TaskUpdateError::WrongResource(other.to_owned())),
                None => return Err(TaskUpdateError::NotATask),
            }
            let status = status(task.get("status").ok_or(TaskUpdateError::MissingStatus)?)?;
            let reason = match task.get("statusReason") {
                Some(concept) => reason(concept)?,
                None => None,
            };
            let reason = match (reason, task.get("note")) {
                (Some(reason), _) => Some(reason),
                (None, Some(Value::Array(notes))) => match notes.first() {
                    Some(Value::Object(note)) => note.get("text").and_then(Value::as_str).and_then(text),
                    Some(_) => return Err(TaskUpdateError::BadNote),
                    None => None,
                },
                (None, Some(_)) => return Err(TaskUpdateError::BadNote),
                (None, None) => None,
            };
            Ok((status, reason))
        }
        _ => Err(TaskUpdateError::NotATask),
    }
}

fn from_patch(ops: &[Value]) -> Result<(TaskStatus, Option<String>), TaskUpdateError> {
    let mut new_status = None;
    let mut new_reason = None;
    for (i, op) in ops.iter().enumerate() {
        let name = op.get("op").and_then(Value::as_str).ok_or(TaskUpdateError::BadOperation(i))?;
        let path = op.get("path").and_then(Value::as_str).ok_or(TaskUpdateError::BadOperation(i))?;
        if !matches!(path, "/status" | "/statusReason" | "/statusReason/text") {
            return Err(TaskUpdateError::ReadOnlyPath(path.to_owned()));
        }
        let value = op.get("value").unwrap_or(&Value::Null);
        match (name, path) {
            ("replace" | "add", "/status") => new_status = Some(status(value)?),
            ("replace" | "add", "/statusReason") => new_reason = reason(value)?,
            ("replace" | "add", _) => match value {
                Value::String(s) => new_reason = text(s),
                _ => return Err(TaskUpdateError::BadReason),
            },
            ("remove", "/statusReason" | "/statusReason/text") => new_reason = None,
            ("remove", _) => return Err(TaskUpdateError::MissingStatus),
            (other, _) => return Err(TaskUpdateError::UnsupportedOperation(other.to_owned())),
        }
    }
    Ok((new_status.ok_or(TaskUpdateError::PatchWithoutStatus)?, new_reason))
}

fn status(value: &Value) -> Result<TaskStatus, TaskUpdateError> {
    match value {
        Value::String(code) => {
            TaskStatus::parse(code.trim()).ok_or_else(|| TaskUpdateError::UnknownStatus(value.to_string()))
        }
        Value::Null => Err(TaskUpdateError::MissingStatus),
        other => Err(TaskUpdateError::UnknownStatus(other.to_string())),
    }
}

/// A statusReason's text; else the label of a decline code Kith knows; else a coding's display.
fn reason(concept: &Value) -> Result<Option<String>, TaskUpdateError> {
    let Value::Object(concept) = concept else {
        return match concept {
            Value::Null => Ok(None),
            _ => Err(TaskUpdateError::BadReason),
        };
    };
    if let Some(t) = concept.get("text") {
        return t.as_str().map(text).ok_or(TaskUpdateError::BadReason).map(|t| t.or_else(|| coded(concept)));
    }
    Ok(coded(concept))
}

fn coded(concept: &serde_json::Map<String, Value>) -> Option<String> {
    let codings = concept.get("coding")?.as_array()?;
    let field = |c: &Value, name: &str| c.get(name).and_then(Value::as_str).map(str::to_owned);
    let known = codings.iter().find_map(|c| {
        let (system, code) = (field(c, "system")?, field(c, "code")?);
        if system == SNOMED && code == snomed::SOCIAL_PRESCRIBING_DECLINED {
            Some(DeclineReason::PersonDeclined.label().to_owned())
        } else if system.ends_with("/CodeSystem/kith-decline-reason") {
            decline_from_code(&code).map(|r| r.label().to_owned())
        } else {
            None
        }
    });
    known.or_else(|| codings.iter().find_map(|c| field(c, "display").as_deref().and_then(text)))
}
