//! Jobs and their declared outputs. A job owns the object keys under its `output_prefix`
//! in its pipeline; the queries here find owners by prefix with index seeks only.

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Success,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Running => "RUNNING",
            JobStatus::Success => "SUCCESS",
            JobStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "QUEUED" => JobStatus::Queued,
            "RUNNING" => JobStatus::Running,
            "SUCCESS" => JobStatus::Success,
            "FAILED" => JobStatus::Failed,
            _ => return None,
        })
    }
}

impl rusqlite::types::FromSql for JobStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        JobStatus::parse(s)
            .ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("job status {s}").into()))
    }
}

impl rusqlite::ToSql for JobStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub pipeline_id: String,
    pub status: JobStatus,
    pub percentage_completed: i64,
    pub input_name: Option<String>,
    pub input_file_id: Option<String>,
    /// The input file's name when the job was created.
    pub input_file_name: Option<String>,
    /// Expanded (`{job_id}` replaced); never empty.
    pub output_prefix: String,
    /// JSON text, as given.
    pub user_data: Option<String>,
    pub app_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When it became `RUNNING`.
    pub started_at: Option<i64>,
    /// When it became `SUCCESS` or `FAILED`.
    pub finished_at: Option<i64>,
}

const COLS: &str = "id, pipeline_id, status, percentage_completed, input_name, input_file_id, \
                    input_file_name, output_prefix, user_data, app_id, created_at, updated_at, \
                    started_at, finished_at";

fn from_row(r: &Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        pipeline_id: r.get(1)?,
        status: r.get(2)?,
        percentage_completed: r.get(3)?,
        input_name: r.get(4)?,
        input_file_id: r.get(5)?,
        input_file_name: r.get(6)?,
        output_prefix: r.get(7)?,
        user_data: r.get(8)?,
        app_id: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
    })
}

/// Inserts the job and its outputs (in order).
pub fn insert(conn: &Connection, j: &JobRow, outputs: &[String]) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO jobs({COLS}, input_name_fold)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            j.id,
            j.pipeline_id,
            j.status,
            j.percentage_completed,
            j.input_name,
            j.input_file_id,
            j.input_file_name,
            j.output_prefix,
            j.user_data,
            j.app_id,
            j.created_at,
            j.updated_at,
            j.started_at,
            j.finished_at,
            j.input_file_name.as_deref().map(str::to_lowercase),
        ],
    )?;
    let mut st = conn.prepare("INSERT INTO job_outputs(job_id, idx, output_name) VALUES (?1, ?2, ?3)")?;
    for (i, name) in outputs.iter().enumerate() {
        st.execute(params![j.id, i as i64, name])?;
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<JobRow>> {
    conn.query_row(&format!("SELECT {COLS} FROM jobs WHERE id = ?1"), [id], from_row)
        .optional()
}

/// Only the status: what the download gate reads on every request (a primary-key lookup).
pub fn status(conn: &Connection, id: &str) -> rusqlite::Result<Option<JobStatus>> {
    conn.query_row("SELECT status FROM jobs WHERE id = ?1", [id], |r| r.get(0))
        .optional()
}

/// Writes status, percentage and the start/finish instants of a job.
pub fn update_progress(conn: &Connection, j: &JobRow) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE jobs SET status = ?2, percentage_completed = ?3, updated_at = ?4, started_at = ?5,
                finished_at = ?6
         WHERE id = ?1",
        params![
            j.id,
            j.status,
            j.percentage_completed,
            j.updated_at,
            j.started_at,
            j.finished_at
        ],
    )?;
    Ok(())
}

/// The declared output names of each job in `job_ids`, as `(job_id, output_name)` in order.
pub fn outputs(conn: &Connection, job_ids: &[String]) -> rusqlite::Result<Vec<(String, String)>> {
    let ids = serde_json::to_string(job_ids).unwrap_or_else(|_| "[]".into());
    let mut st = conn.prepare(
        "SELECT job_id, output_name FROM job_outputs
         WHERE job_id IN (SELECT value FROM json_each(?1)) ORDER BY job_id, idx",
    )?;
    let rows = st.query_map([ids], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Every job of `pipeline_id` whose prefix is a prefix of `key` (`key` included), longest
/// prefix first.
///
/// Index seeks only, however many jobs the pipeline has: the greatest prefix `c <= bound`
/// is either a prefix of `key` (taken; continue below it), or it shares only its first
/// `l` bytes with `bound`, and then no prefix of `key` lies between `bound[..l]` and
/// `bound` (one would sort after `c`), so the search continues at `bound[..l]`.
/// `bound` shortens at every step.
pub fn owners_of_key(
    conn: &Connection,
    pipeline_id: &str,
    key: &str,
) -> rusqlite::Result<Vec<(String, JobStatus, String)>> {
    let mut max_le = conn.prepare_cached(
        "SELECT output_prefix FROM jobs WHERE pipeline_id = ?1 AND output_prefix <= ?2
         ORDER BY output_prefix DESC LIMIT 1",
    )?;
    let mut with_prefix =
        conn.prepare_cached("SELECT id, status FROM jobs WHERE pipeline_id = ?1 AND output_prefix = ?2")?;
    let mut found = Vec::new();
    let mut bound: &str = key;
    while !bound.is_empty() {
        let c: Option<String> = max_le
            .query_row(params![pipeline_id, bound], |r| r.get(0))
            .optional()?;
        let Some(c) = c else { break };
        if key.starts_with(c.as_str()) {
            let rows = with_prefix.query_map(params![pipeline_id, c], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in rows {
                let (id, status) = row?;
                found.push((id, status, c.clone()));
            }
            bound = shorter_than(key, c.len());
        } else {
            let l = common_prefix_len(bound, &c);
            bound = &bound[..l];
        }
    }
    Ok(found)
}

/// `key[..n]` minus its last character (a prefix strictly shorter than `n` bytes).
fn shorter_than(key: &str, n: usize) -> &str {
    let head = &key[..n];
    match head.char_indices().next_back() {
        Some((i, _)) => &head[..i],
        None => "",
    }
}

/// Bytes `a` and `b` share at their start, cut back to a character boundary of `a`.
fn common_prefix_len(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// The smallest prefix `>= prefix` among jobs of the pipeline that are not `FAILED`:
/// if any such job's prefix starts with `prefix`, this one does.
pub fn first_live_prefix_from(
    conn: &Connection,
    pipeline_id: &str,
    prefix: &str,
) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT output_prefix FROM jobs
         WHERE pipeline_id = ?1 AND output_prefix >= ?2 AND status != 'FAILED'
         ORDER BY output_prefix LIMIT 1",
        params![pipeline_id, prefix],
        |r| r.get(0),
    )
    .optional()
}

/// Deletes every job of a pipeline (with their outputs); returns how many.
pub fn delete_in_pipeline(conn: &Connection, pipeline_id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM jobs WHERE pipeline_id = ?1", [pipeline_id])
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    CreatedAt,
    UpdatedAt,
}

impl SortKey {
    pub fn parse(s: &str) -> Option<SortKey> {
        match s {
            "created_at" => Some(SortKey::CreatedAt),
            "updated_at" => Some(SortKey::UpdatedAt),
            _ => None,
        }
    }
    fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
        }
    }
}

/// Filters and order of a job listing.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<JobStatus>,
    pub pipeline_id: Option<String>,
    /// `Some(true)`: jobs with at least one declared output stored with AutoGraph enabled
    /// (and not expired); `Some(false)`: jobs with none.
    pub autograph: Option<bool>,
    /// Case-insensitive substring of the input file's name.
    pub input_file_name: Option<String>,
    pub sort: SortKey,
    pub ascending: bool,
    pub start: u64,
    pub limit: u64,
    pub now_ms: i64,
}

/// One page of jobs and the total number matching the filters.
pub fn list(conn: &Connection, q: &ListQuery) -> rusqlite::Result<(Vec<JobRow>, u64)> {
    let mut cond = vec!["1"];
    let status = q.status.map(JobStatus::as_str);
    if status.is_some() {
        cond.push("status = :status");
    }
    if q.pipeline_id.is_some() {
        cond.push("pipeline_id = :pipeline");
    }
    let autograph_output = "EXISTS (SELECT 1 FROM job_outputs o JOIN files f
                  ON f.job_id = o.job_id AND f.object_key = jobs.output_prefix || o.output_name
                WHERE o.job_id = jobs.id AND f.autograph = 1
                  AND (f.expires_at = 0 OR f.expires_at > :now))";
    let not_autograph = format!("NOT {autograph_output}");
    match q.autograph {
        Some(true) => cond.push(autograph_output),
        Some(false) => cond.push(&not_autograph),
        None => {}
    }
    let fold = q.input_file_name.as_deref().map(str::to_lowercase);
    if fold.is_some() {
        cond.push("instr(input_name_fold, :name) > 0");
    }
    let filter = cond.join(" AND ");
    let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
    if let Some(s) = &status {
        named.push((":status", s));
    }
    if let Some(p) = &q.pipeline_id {
        named.push((":pipeline", p));
    }
    if q.autograph.is_some() {
        named.push((":now", &q.now_ms));
    }
    if let Some(n) = &fold {
        named.push((":name", n));
    }
    let window = super::Window {
        column: q.sort.column(),
        ascending: q.ascending,
        start: q.start,
        limit: q.limit,
    };
    super::page(conn, "jobs", COLS, &filter, &named, window, from_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, prefix: &str, status: JobStatus) -> JobRow {
        JobRow {
            id: id.into(),
            pipeline_id: "p".into(),
            status,
            percentage_completed: 0,
            input_name: None,
            input_file_id: None,
            input_file_name: None,
            output_prefix: prefix.into(),
            user_data: None,
            app_id: None,
            created_at: 1,
            updated_at: 1,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn owners_of_key_finds_every_prefix_by_seeks() {
        let c = Connection::open_in_memory().unwrap();
        crate::catalog::migrations::run(&c).unwrap();
        c.execute_batch(
            "INSERT INTO pipelines(id, name, created_at, updated_at) VALUES ('p', 'p', 1, 1),
                                                                           ('q', 'q', 1, 1)",
        )
        .unwrap();
        for (id, prefix, st) in [
            ("j1", "a/", JobStatus::Failed),
            ("j2", "a/b/", JobStatus::Running),
            ("j3", "a/b/", JobStatus::Failed),
            ("j4", "a/bc", JobStatus::Queued),
            ("j5", "a/b/c/d", JobStatus::Success),
            ("j6", "a0", JobStatus::Queued),
            ("j7", "é/", JobStatus::Queued),
            ("j8", "a/b/c", JobStatus::Failed),
        ] {
            insert(&c, &job(id, prefix, st), &[]).unwrap();
        }
        let mut other = job("j9", "a/", JobStatus::Running);
        other.pipeline_id = "q".into();
        insert(&c, &other, &[]).unwrap();
        let ids = |key: &str| -> Vec<String> {
            let mut v: Vec<_> = owners_of_key(&c, "p", key)
                .unwrap()
                .into_iter()
                .map(|(id, _, p)| format!("{id}:{p}"))
                .collect();
            v.sort();
            v
        };
        assert_eq!(ids("a/b/c/x"), ["j1:a/", "j2:a/b/", "j3:a/b/", "j8:a/b/c"]);
        assert_eq!(
            ids("a/b/c/d/e"),
            ["j1:a/", "j2:a/b/", "j3:a/b/", "j5:a/b/c/d", "j8:a/b/c"]
        );
        assert_eq!(ids("a/bcd"), ["j1:a/", "j4:a/bc"]);
        assert_eq!(ids("a/b"), ["j1:a/"]);
        assert_eq!(ids("a0x"), ["j6:a0"]);
        assert_eq!(ids("é/x"), ["j7:é/"]);
        assert_eq!(ids("ê"), Vec::<String>::new());
        assert_eq!(ids("b"), Vec::<String>::new());
        assert_eq!(
            owners_of_key(&c, "p", "a/b/x").unwrap()[0].0,
            "j2",
            "longest first"
        );
        assert_eq!(
            first_live_prefix_from(&c, "p", "a/b/c").unwrap().as_deref(),
            Some("a/b/c/d"),
            "the FAILED a/b/c is skipped"
        );
    }

    #[test]
    fn status_round_trips_and_refuses_other_words() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Success,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobStatus::parse("success"), None);
    }
}
