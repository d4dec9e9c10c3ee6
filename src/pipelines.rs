//! Pipelines: namespaces for object keys and jobs; creating them with their defaults and
//! deleting them with (or, unless forced, only without) their files.

use rusqlite::Connection;

use crate::catalog::files;
use crate::catalog::jobs as catalog_jobs;
use crate::catalog::pipelines::{self, PipelineRow};
use crate::catalog::write_tx;
use crate::error::ApiError;
use crate::ids;
use crate::store::Store;

pub const PERMANENT: &str = "permanent";
pub const TEMPORARY: &str = "temporary";
/// A temporary pipeline created without `default_object_timeout` keeps files 7 days.
pub const DEFAULT_TEMPORARY_TIMEOUT: i64 = 7 * 24 * 3600;
/// Longest accepted `default_object_timeout`: 100 years, in seconds.
pub const MAX_OBJECT_TIMEOUT: i64 = 100 * 365 * 24 * 3600;
pub const MAX_NAME: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;

/// What `POST /v1/pipelines/` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewPipeline {
    pub name: String,
    pub description: Option<String>,
    /// `permanent` (default) or `temporary`.
    pub mode: Option<String>,
    /// Seconds; `None` → 7 days for a temporary pipeline, 0 for a permanent one.
    pub default_object_timeout: Option<i64>,
}

pub fn not_found() -> ApiError {
    ApiError::not_found("pipeline")
}

/// The row a new pipeline gets, or 400 naming the field at fault.
pub fn plan(p: &NewPipeline, now_ms: i64) -> Result<PipelineRow, ApiError> {
    let name = p.name.trim();
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("invalid_name", "name"));
    }
    let description = p.description.clone().unwrap_or_default();
    if description.len() > MAX_DESCRIPTION {
        return Err(ApiError::invalid("invalid_description", "description"));
    }
    let mode = match p.mode.as_deref() {
        None | Some(PERMANENT) => PERMANENT,
        Some(TEMPORARY) => TEMPORARY,
        Some(_) => return Err(ApiError::invalid("invalid_mode", "store_options.mode")),
    };
    let bad_timeout = || ApiError::invalid("invalid_default_object_timeout", "default_object_timeout");
    let timeout = match (mode, p.default_object_timeout) {
        (_, Some(t)) if !(0..=MAX_OBJECT_TIMEOUT).contains(&t) => return Err(bad_timeout()),
        // A temporary pipeline whose files never expire would not be temporary.
        (TEMPORARY, Some(0)) => return Err(bad_timeout()),
        (TEMPORARY, None) => DEFAULT_TEMPORARY_TIMEOUT,
        (_, Some(t)) => t,
        (_, None) => 0,
    };
    Ok(PipelineRow {
        id: ids::new_id(now_ms.div_euclid(1000)),
        name: name.to_string(),
        description,
        mode: mode.to_string(),
        default_object_timeout: timeout,
        created_at: now_ms,
        updated_at: now_ms,
    })
}

/// Creates a pipeline. Blocking.
pub fn create(conn: &mut Connection, p: &NewPipeline, now_ms: i64) -> Result<PipelineRow, ApiError> {
    let row = plan(p, now_ms)?;
    write_tx(conn, |tx| pipelines::insert(tx, &row))?;
    Ok(row)
}

/// What deleting a pipeline removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub files: usize,
    pub jobs: usize,
}

/// How often a forced delete starts over when uploads keep landing in the pipeline.
const DELETE_ROUNDS: usize = 5;
const BATCH: usize = 500;

/// Deletes pipeline `id` and its jobs. While it holds (unexpired) files: 409
/// `pipeline_not_empty`, unless `force`, which first deletes every file of the pipeline
/// through [`crate::files::delete_file`] (blob references and bytes stay right). Expired
/// files not yet swept are removed either way. Blocking.
pub fn delete(
    conn: &mut Connection,
    store: &Store,
    id: &str,
    force: bool,
    now_ms: i64,
) -> Result<Deleted, ApiError> {
    let mut deleted = Deleted::default();
    for _ in 0..DELETE_ROUNDS {
        if pipelines::get(conn, id)?.is_none() {
            return Err(not_found());
        }
        if !force && files::count_visible_in_pipeline(conn, id, now_ms)? > 0 {
            return Err(not_empty());
        }
        // Without force, only files already expired (a new upload may land meanwhile and
        // must not be swept away with them).
        let only_expired = (!force).then_some(now_ms);
        loop {
            let batch = files::ids_in_pipeline(conn, id, only_expired, BATCH)?;
            for fid in &batch {
                if crate::files::delete_file(conn, store, fid)?.is_some() {
                    deleted.files += 1;
                }
            }
            if batch.len() < BATCH {
                break;
            }
        }
        // Files and the pipeline row go in one transaction with the check that no file
        // arrived since: otherwise, start over.
        let done = write_tx(conn, |tx| {
            if !files::ids_in_pipeline(tx, id, None, 1)?.is_empty() {
                return Ok::<_, ApiError>(None);
            }
            let jobs = catalog_jobs::delete_in_pipeline(tx, id)?;
            if !pipelines::delete(tx, id)? {
                return Err(not_found());
            }
            Ok(Some(jobs))
        })?;
        if let Some(jobs) = done {
            deleted.jobs = jobs;
            return Ok(deleted);
        }
    }
    Err(not_empty())
}

fn not_empty() -> ApiError {
    ApiError::conflict("pipeline_not_empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_pipelines_default_to_seven_days_and_need_a_timeout() {
        let p = |mode: Option<&str>, t: Option<i64>| NewPipeline {
            name: "n".into(),
            mode: mode.map(String::from),
            default_object_timeout: t,
            ..Default::default()
        };
        let row = plan(&p(Some("temporary"), None), 1000).unwrap();
        assert_eq!(
            (row.mode.as_str(), row.default_object_timeout),
            ("temporary", 604_800)
        );
        let row = plan(&p(Some("temporary"), Some(60)), 1000).unwrap();
        assert_eq!(row.default_object_timeout, 60);
        let row = plan(&p(None, None), 1000).unwrap();
        assert_eq!((row.mode.as_str(), row.default_object_timeout), ("permanent", 0));
        for (mode, t, why) in [
            (Some("temporary"), Some(0), "invalid_default_object_timeout"),
            (None, Some(-1), "invalid_default_object_timeout"),
            (
                None,
                Some(MAX_OBJECT_TIMEOUT + 1),
                "invalid_default_object_timeout",
            ),
            (Some("forever"), None, "invalid_mode"),
        ] {
            assert_eq!(plan(&p(mode, t), 1).unwrap_err().reason, why, "{mode:?} {t:?}");
        }
        let mut blank = p(None, None);
        blank.name = "  ".into();
        assert_eq!(plan(&blank, 1).unwrap_err().reason, "invalid_name");
    }
}
