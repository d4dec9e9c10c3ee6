//! Jobs: the outputs of one conversion in a pipeline, whether they are ready, and the
//! download gate that keeps them back until they are.
//!
//! A job owns the object keys under its expanded `output_prefix` in its pipeline. Prefixes
//! of jobs that are not `FAILED` never overlap (checked at creation, under the write
//! lock), so a key has at most one live owner. A file stored under a live job's prefix
//! gets that job's id in the same transaction as its row ([`owner_for_upload`]); a key
//! only claimed by `FAILED` jobs is refused. Files may join a job until it fails, also
//! after `SUCCESS` (they are then downloadable at once).
//!
//! Moves: `QUEUED → RUNNING → SUCCESS | FAILED`, and `SUCCESS → FAILED` (a retraction:
//! links issued meanwhile stop working). `FAILED` is final.

use rusqlite::Connection;

use crate::catalog::files::{self, FileRow};
use crate::catalog::jobs as catalog_jobs;
use crate::catalog::pipelines;
use crate::catalog::write_tx;
use crate::error::ApiError;
use crate::files::object_key;
use crate::ids;

pub use crate::catalog::jobs::{JobRow, JobStatus, ListQuery, SortKey};

/// The prefix of a job created without one.
pub const DEFAULT_OUTPUT_PREFIX: &str = "{job_id}/";
/// The placeholder `output_prefix` may carry.
pub const JOB_ID_PLACEHOLDER: &str = "{job_id}";
pub const MAX_OUTPUTS: usize = 1000;
/// Largest `user_data`, serialized.
pub const MAX_USER_DATA: usize = 64 * 1024;
/// Longest `input_name`.
pub const MAX_INPUT_NAME: usize = 1024;

/// Whether `file` may be downloaded now. Call it before issuing a link
/// (`GET /v1/files/downloads`) AND when serving one (`/d/…`): it reads the job's current
/// status, so a job moved to `FAILED` after a link was issued stops that link at once.
///
/// - no job → `Ok`
/// - job `SUCCESS` → `Ok`
/// - job `QUEUED` or `RUNNING` → 409 `job_not_finished`
/// - job `FAILED` → 409 `job_failed`
/// - the file names a job that does not exist → 409 `job_not_finished` (fail closed)
///
/// Cost: nothing for a file without a job, else one primary-key lookup.
pub fn download_gate(conn: &Connection, file: &FileRow) -> Result<(), ApiError> {
    let Some(job_id) = file.job_id.as_deref() else {
        return Ok(());
    };
    match catalog_jobs::status(conn, job_id)? {
        Some(JobStatus::Success) => Ok(()),
        Some(JobStatus::Failed) => Err(job_failed()),
        Some(JobStatus::Queued | JobStatus::Running) | None => Err(ApiError::conflict("job_not_finished")),
    }
}

fn job_failed() -> ApiError {
    ApiError::conflict("job_failed")
}

pub fn not_found() -> ApiError {
    ApiError::not_found("job")
}

/// The job a new file at `object_key` in `pipeline_id` belongs to: the live (not `FAILED`)
/// job whose prefix starts the key. 409 `job_failed` (param `object_key`) when only
/// `FAILED` jobs claim the key. Run it in the transaction that inserts the file.
pub fn owner_for_upload(
    conn: &Connection,
    pipeline_id: &str,
    object_key: &str,
) -> Result<Option<String>, ApiError> {
    let owners = catalog_jobs::owners_of_key(conn, pipeline_id, object_key)?;
    if let Some((id, _, _)) = owners.iter().find(|(_, s, _)| *s != JobStatus::Failed) {
        return Ok(Some(id.clone()));
    }
    if owners.is_empty() {
        Ok(None)
    } else {
        Err(job_failed().with_param("object_key"))
    }
}

/// What `POST /v1/jobs/` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewJob {
    pub pipeline_id: String,
    pub input_name: Option<String>,
    pub input_file_id: Option<String>,
    /// As given, `{job_id}` not yet expanded; `None` → [`DEFAULT_OUTPUT_PREFIX`].
    pub output_prefix: Option<String>,
    pub outputs: Vec<String>,
    /// JSON text.
    pub user_data: Option<String>,
    pub app_id: Option<String>,
}

/// The expanded prefix and output names of a job with id `id`, checked: each
/// `prefix + output_name` must be an acceptable object key, names unique.
pub fn plan(j: &NewJob, id: &str) -> Result<String, ApiError> {
    let template = j.output_prefix.as_deref().unwrap_or(DEFAULT_OUTPUT_PREFIX);
    let prefix = template.replace(JOB_ID_PLACEHOLDER, id);
    object_key::validate(&prefix).map_err(|_| ApiError::invalid("invalid_output_prefix", "output_prefix"))?;
    if j.outputs.is_empty() {
        return Err(ApiError::invalid("missing_outputs", "outputs"));
    }
    if j.outputs.len() > MAX_OUTPUTS {
        return Err(ApiError::invalid("too_many_outputs", "outputs"));
    }
    for (i, name) in j.outputs.iter().enumerate() {
        if name.is_empty() || object_key::validate(&format!("{prefix}{name}")).is_err() {
            return Err(ApiError::invalid("invalid_output_name", "outputs.output_name"));
        }
        if j.outputs[..i].contains(name) {
            return Err(ApiError::invalid("duplicate_output_name", "outputs.output_name"));
        }
    }
    if j.user_data.as_ref().is_some_and(|u| u.len() > MAX_USER_DATA) {
        return Err(ApiError::invalid("user_data_too_large", "user_data"));
    }
    if j.input_name.as_ref().is_some_and(|n| n.len() > MAX_INPUT_NAME) {
        return Err(ApiError::invalid("invalid_input_name", "input.input_name"));
    }
    Ok(prefix)
}

/// Creates a job in `QUEUED`. 404 `pipeline_not_found` / `file_not_found` (input), 409
/// `output_prefix_in_use` when the prefix overlaps a live job's or files already sit
/// under it. Blocking.
pub fn create(conn: &mut Connection, j: &NewJob, now_ms: i64) -> Result<JobView, ApiError> {
    let id = ids::new_id(now_ms.div_euclid(1000));
    let prefix = plan(j, &id)?;
    let row = write_tx(conn, |tx| {
        if pipelines::get(tx, &j.pipeline_id)?.is_none() {
            return Err(ApiError::not_found("pipeline").with_param("pipeline.id"));
        }
        let input = match &j.input_file_id {
            Some(fid) => Some(
                files::get(tx, fid)?
                    .filter(|f| !f.is_expired(now_ms))
                    .ok_or_else(|| ApiError::not_found("file").with_param("input.file.id"))?,
            ),
            None => None,
        };
        check_prefix_free(tx, &j.pipeline_id, &prefix)?;
        let row = JobRow {
            id: id.clone(),
            pipeline_id: j.pipeline_id.clone(),
            status: JobStatus::Queued,
            percentage_completed: 0,
            input_name: j.input_name.clone(),
            input_file_id: input.as_ref().map(|f| f.id.clone()),
            input_file_name: input.as_ref().map(|f| f.name.clone()),
            output_prefix: prefix.clone(),
            user_data: j.user_data.clone(),
            app_id: j.app_id.clone(),
            created_at: now_ms,
            updated_at: now_ms,
            started_at: None,
            finished_at: None,
        };
        catalog_jobs::insert(tx, &row, &j.outputs)?;
        Ok::<_, ApiError>(row)
    })?;
    let mut views = views(conn, vec![row], now_ms)?;
    views
        .pop()
        .ok_or_else(|| ApiError::internal("created job vanished"))
}

/// 409 `output_prefix_in_use` unless no live job's prefix overlaps `prefix` (one starts
/// with the other) and no file of the pipeline sits under it.
fn check_prefix_free(conn: &Connection, pipeline_id: &str, prefix: &str) -> Result<(), ApiError> {
    let in_use = || ApiError::conflict("output_prefix_in_use").with_param("output_prefix");
    let shorter_or_equal = catalog_jobs::owners_of_key(conn, pipeline_id, prefix)?;
    if shorter_or_equal.iter().any(|(_, s, _)| *s != JobStatus::Failed) {
        return Err(in_use());
    }
    if catalog_jobs::first_live_prefix_from(conn, pipeline_id, prefix)?.is_some_and(|p| p.starts_with(prefix))
    {
        return Err(in_use());
    }
    if files::first_key_from(conn, pipeline_id, prefix)?.is_some_and(|k| k.starts_with(prefix)) {
        return Err(in_use());
    }
    Ok(())
}

/// What `PUT /v1/jobs/ID` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub status: Option<JobStatus>,
    /// Already checked to be in 0..=100.
    pub percentage_completed: Option<i64>,
}

/// True for the moves a job can make.
pub fn can_move(from: JobStatus, to: JobStatus) -> bool {
    use JobStatus::*;
    matches!(
        (from, to),
        (Queued, Running) | (Running, Success) | (Running, Failed) | (Success, Failed)
    )
}

/// The job after `p`, or `None` when `p` changes nothing (a repeated report).
/// 409 `invalid_transition` for a move the job cannot make, a percentage outside
/// `RUNNING`; 400 `invalid_percentage` for `SUCCESS` below 100.
pub fn apply(job: &JobRow, p: &Progress, now_ms: i64) -> Result<Option<JobRow>, ApiError> {
    let invalid = |param: &str| ApiError::conflict("invalid_transition").with_param(param);
    let to = p.status.unwrap_or(job.status);
    let mut next = job.clone();
    if to == job.status {
        match (job.status, p.percentage_completed) {
            (_, None) => return Ok(None),
            (_, Some(pct)) if pct == job.percentage_completed => return Ok(None),
            (JobStatus::Running, Some(pct)) => next.percentage_completed = pct,
            (_, Some(_)) => return Err(invalid("percentage_completed")),
        }
    } else {
        if !can_move(job.status, to) {
            return Err(invalid("status"));
        }
        next.status = to;
        match to {
            JobStatus::Running => next.started_at = Some(now_ms),
            JobStatus::Success | JobStatus::Failed => next.finished_at = Some(now_ms),
            JobStatus::Queued => {}
        }
        if to == JobStatus::Success {
            if p.percentage_completed.is_some_and(|pct| pct != 100) {
                return Err(ApiError::invalid("invalid_percentage", "percentage_completed"));
            }
            next.percentage_completed = 100;
        } else if let Some(pct) = p.percentage_completed {
            next.percentage_completed = pct;
        }
    }
    next.updated_at = now_ms;
    Ok(Some(next))
}

/// Applies `p` to job `id` under the write lock; returns the job as it now is. Blocking.
pub fn update(conn: &mut Connection, id: &str, p: &Progress, now_ms: i64) -> Result<JobView, ApiError> {
    let row = write_tx(conn, |tx| {
        let job = catalog_jobs::get(tx, id)?.ok_or_else(not_found)?;
        match apply(&job, p, now_ms)? {
            Some(next) => {
                catalog_jobs::update_progress(tx, &next)?;
                Ok::<_, ApiError>(next)
            }
            None => Ok(job),
        }
    })?;
    let mut views = views(conn, vec![row], now_ms)?;
    views.pop().ok_or_else(not_found)
}

/// One declared output and the file stored for it, if any.
#[derive(Debug, Clone)]
pub struct OutputView {
    pub output_name: String,
    /// `output_prefix + output_name`.
    pub object_key: String,
    /// The job's (unexpired) file at `object_key`.
    pub file: Option<FileRow>,
}

/// A job with what it points at.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: JobRow,
    /// The input file, while it exists (unexpired).
    pub input_file: Option<FileRow>,
    pub outputs: Vec<OutputView>,
}

impl OutputView {
    /// 100 once the output's file is stored, else the job's.
    pub fn percentage_completed(&self, job: &JobRow) -> i64 {
        if self.file.is_some() {
            100
        } else {
            job.percentage_completed
        }
    }
}

/// Job `id` with its input and output files. Blocking.
pub fn view(conn: &Connection, id: &str, now_ms: i64) -> Result<Option<JobView>, ApiError> {
    let Some(job) = catalog_jobs::get(conn, id)? else {
        return Ok(None);
    };
    Ok(views(conn, vec![job], now_ms)?.pop())
}

/// The jobs among `ids` that exist, with their input and output files (each id once,
/// in no particular order). Blocking.
pub fn views_of(conn: &Connection, ids: &[String], now_ms: i64) -> Result<Vec<JobView>, ApiError> {
    let mut rows: Vec<JobRow> = Vec::new();
    for id in ids {
        if rows.iter().any(|j| &j.id == id) {
            continue;
        }
        if let Some(job) = catalog_jobs::get(conn, id)? {
            rows.push(job);
        }
    }
    views(conn, rows, now_ms)
}

/// One page of jobs with their files, and the total. Blocking.
pub fn list(conn: &Connection, q: &ListQuery) -> Result<(Vec<JobView>, u64), ApiError> {
    let (rows, total) = catalog_jobs::list(conn, q)?;
    Ok((views(conn, rows, q.now_ms)?, total))
}

/// Attaches outputs and files to `jobs` with three queries, whatever their number.
fn views(conn: &Connection, jobs: Vec<JobRow>, now_ms: i64) -> Result<Vec<JobView>, ApiError> {
    let job_ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let outputs = catalog_jobs::outputs(conn, &job_ids)?;
    let job_files: Vec<FileRow> = files::of_jobs(conn, &job_ids)?
        .into_iter()
        .filter(|f| !f.is_expired(now_ms))
        .collect();
    let input_ids: Vec<String> = jobs.iter().filter_map(|j| j.input_file_id.clone()).collect();
    let inputs: Vec<FileRow> = files::get_many(conn, &input_ids)?
        .into_iter()
        .filter(|f| !f.is_expired(now_ms))
        .collect();
    Ok(jobs
        .into_iter()
        .map(|job| {
            let outputs = outputs
                .iter()
                .filter(|(jid, _)| *jid == job.id)
                .map(|(_, name)| {
                    let key = format!("{}{name}", job.output_prefix);
                    let file = job_files
                        .iter()
                        .find(|f| f.job_id.as_deref() == Some(job.id.as_str()) && f.object_key == key)
                        .cloned();
                    OutputView {
                        output_name: name.clone(),
                        object_key: key,
                        file,
                    }
                })
                .collect();
            let input_file = job
                .input_file_id
                .as_deref()
                .and_then(|id| inputs.iter().find(|f| f.id == id).cloned());
            JobView {
                job,
                input_file,
                outputs,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: JobStatus, pct: i64) -> JobRow {
        JobRow {
            id: "j".into(),
            pipeline_id: "p".into(),
            status,
            percentage_completed: pct,
            input_name: None,
            input_file_id: None,
            input_file_name: None,
            output_prefix: "j/".into(),
            user_data: None,
            app_id: None,
            created_at: 1,
            updated_at: 1,
            started_at: None,
            finished_at: None,
        }
    }

    fn to(status: Option<JobStatus>, pct: Option<i64>) -> Progress {
        Progress {
            status,
            percentage_completed: pct,
        }
    }

    #[test]
    fn every_move_is_allowed_or_refused_as_the_state_machine_says() {
        use JobStatus::*;
        let all = [Queued, Running, Success, Failed];
        for from in all {
            for target in all {
                let r = apply(&job(from, 0), &to(Some(target), None), 9);
                let ok = matches!(
                    (from, target),
                    (Queued, Running) | (Running, Success) | (Running, Failed) | (Success, Failed)
                );
                if from == target {
                    assert!(matches!(r, Ok(None)), "{from:?} repeated is a no-op");
                } else if ok {
                    let next = r.unwrap().unwrap();
                    assert_eq!((next.status, next.updated_at), (target, 9));
                } else {
                    let e = r.unwrap_err();
                    assert_eq!(
                        (e.status().as_u16(), e.reason.as_ref(), e.param.as_deref()),
                        (409, "invalid_transition", Some("status")),
                        "{from:?} → {target:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn percentages_move_only_while_running_and_success_means_100() {
        let running = job(JobStatus::Running, 10);
        let next = apply(&running, &to(None, Some(40)), 5).unwrap().unwrap();
        assert_eq!(next.percentage_completed, 40);
        for s in [JobStatus::Queued, JobStatus::Success, JobStatus::Failed] {
            let e = apply(&job(s, 0), &to(None, Some(40)), 5).unwrap_err();
            assert_eq!(e.reason, "invalid_transition", "{s:?}");
        }
        let done = apply(&running, &to(Some(JobStatus::Success), None), 5)
            .unwrap()
            .unwrap();
        assert_eq!((done.percentage_completed, done.finished_at), (100, Some(5)));
        let e = apply(&running, &to(Some(JobStatus::Success), Some(99)), 5).unwrap_err();
        assert_eq!(e.reason, "invalid_percentage");
        let failed = apply(&running, &to(Some(JobStatus::Failed), Some(55)), 5)
            .unwrap()
            .unwrap();
        assert_eq!(failed.percentage_completed, 55);
        let started = apply(
            &job(JobStatus::Queued, 0),
            &to(Some(JobStatus::Running), Some(3)),
            7,
        )
        .unwrap()
        .unwrap();
        assert_eq!((started.started_at, started.percentage_completed), (Some(7), 3));
        assert!(
            apply(
                &job(JobStatus::Success, 100),
                &to(Some(JobStatus::Success), Some(100)),
                5
            )
            .unwrap()
            .is_none(),
            "a repeated SUCCESS report changes nothing"
        );
    }

    #[test]
    fn plan_expands_the_job_id_and_checks_names() {
        let mut j = NewJob {
            outputs: vec!["a.mp4".into(), "b/c.mp4".into()],
            ..Default::default()
        };
        assert_eq!(plan(&j, "abc").unwrap(), "abc/");
        j.output_prefix = Some("out/{job_id}-".into());
        assert_eq!(plan(&j, "abc").unwrap(), "out/abc-");
        for (prefix, outputs, why) in [
            ("/abs/", vec!["a"], "invalid_output_prefix"),
            ("", vec!["a"], "invalid_output_prefix"),
            ("x/", vec![], "missing_outputs"),
            ("x/", vec![""], "invalid_output_name"),
            ("x/", vec!["../a"], "invalid_output_name"),
            ("x/", vec!["a\n"], "invalid_output_name"),
            ("x/", vec!["a", "a"], "duplicate_output_name"),
        ] {
            j.output_prefix = Some(prefix.into());
            j.outputs = outputs.into_iter().map(String::from).collect();
            assert_eq!(plan(&j, "abc").unwrap_err().reason, why, "{prefix:?}");
        }
    }
}
