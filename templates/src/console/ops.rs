//! Pipelines, jobs and the link signing keys.

use maud::{html, Markup};

use super::files::PipelineChoice;
use super::{flash, page, pager, Chrome, Pager};

#[derive(Debug, Clone, Default)]
pub struct PipelineItem {
    pub id: String,
    pub name: String,
    pub description: String,
    pub mode: String,
    /// Seconds; shown for temporary pipelines.
    pub default_object_timeout: i64,
    pub created: String,
}

#[derive(Debug, Clone, Default)]
pub struct PipelinesView {
    pub items: Vec<PipelineItem>,
    pub pager: Pager,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub fn pipelines(chrome: &Chrome, v: &PipelinesView) -> Markup {
    page(
        "Pipelines",
        chrome,
        html! {
            h1 { "Pipelines" }
            (flash(v.notice.as_deref(), v.error.as_deref()))
            div.table-wrap {
                table #pipelines {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "id" } th scope="col" { "Mode" } th scope="col" { "Created" } th scope="col" { "Files and jobs" } th scope="col" { "Delete" } } }
                    tbody {
                        @for p in &v.items {
                            tr data-id=(p.id) {
                                td { strong { (p.name) } @if !p.description.is_empty() { br; span.muted { (p.description) } } }
                                td { code { (p.id) } }
                                td { (p.mode) @if p.mode == "temporary" { " (" (p.default_object_timeout) " s)" } }
                                td { (p.created) }
                                td { a href={ "/admin/files?pipeline=" (p.id) } { "Files" } " · " a href={ "/admin/jobs?pipeline=" (p.id) } { "Jobs" } }
                                td {
                                    form.inline method="post" action={ "/admin/pipelines/" (p.id) "/delete" } {
                                        input type="hidden" name="csrf" value=(chrome.csrf);
                                        span.check {
                                            input type="checkbox" id={ "force-" (p.id) } name="force" value="true";
                                            label for={ "force-" (p.id) } { "with its files" }
                                        }
                                        button.danger type="submit" aria-label={ "Delete pipeline " (p.name) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(&v.pager))
            form.card #create-pipeline method="post" action="/admin/pipelines" {
                h2 { "New pipeline" }
                input type="hidden" name="csrf" value=(chrome.csrf);
                div.field { label for="pipeline-name" { "Name" } input #pipeline-name type="text" name="name" required maxlength="256"; }
                div.field { label for="pipeline-description" { "Description" } input #pipeline-description type="text" name="description" maxlength="4096"; }
                div.field {
                    label for="pipeline-mode" { "Store mode" }
                    select #pipeline-mode name="mode" {
                        option value="permanent" { "permanent: files stay until deleted" }
                        option value="temporary" { "temporary: files expire" }
                    }
                }
                div.field {
                    label for="pipeline-timeout" { "Files of a temporary pipeline expire after (seconds; empty = 7 days)" }
                    input #pipeline-timeout type="number" name="default_object_timeout" min="0";
                }
                p { button #create-pipeline-submit type="submit" { "Create" } }
            }
        },
    )
}

#[derive(Debug, Clone, Default)]
pub struct OutputItem {
    pub output_name: String,
    /// The stored file's id, empty until uploaded.
    pub file_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct JobItem {
    pub id: String,
    pub pipeline: String,
    pub status: String,
    pub percentage: i64,
    pub input_name: String,
    pub output_prefix: String,
    pub outputs: Vec<OutputItem>,
    pub created: String,
    /// The statuses it may move to from here.
    pub next: Vec<&'static str>,
}

#[derive(Debug, Clone, Default)]
pub struct JobsView {
    pub items: Vec<JobItem>,
    pub pager: Pager,
    pub status: String,
    pub pipeline: String,
    pub pipelines: Vec<PipelineChoice>,
    pub statuses: Vec<&'static str>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub fn jobs(chrome: &Chrome, v: &JobsView) -> Markup {
    page(
        "Jobs",
        chrome,
        html! {
            h1 { "Jobs" }
            (flash(v.notice.as_deref(), v.error.as_deref()))
            form.card.filters #job-filter method="get" action="/admin/jobs" {
                div.field {
                    label for="job-status" { "Status" }
                    select #job-status name="status" {
                        option value="" selected[v.status.is_empty()] { "Any" }
                        @for s in &v.statuses { option value=(s) selected[v.status == *s] { (s) } }
                    }
                }
                div.field {
                    label for="job-pipeline" { "Pipeline" }
                    select #job-pipeline name="pipeline" {
                        option value="" selected[v.pipeline.is_empty()] { "Any" }
                        @for (pid, pname) in &v.pipelines { option value=(pid) selected[v.pipeline == *pid] { (pname) } }
                    }
                }
                div.field { button type="submit" { "Filter" } }
            }
            div.table-wrap {
                table #jobs {
                    thead { tr { th scope="col" { "Job" } th scope="col" { "Status" } th scope="col" { "Outputs" } th scope="col" { "Created" } th scope="col" { "Report progress" } } }
                    tbody {
                        @for j in &v.items {
                            tr data-id=(j.id) {
                                td { code { (j.id) } br; span.muted { (j.pipeline) } @if !j.input_name.is_empty() { br; "input: " (j.input_name) } }
                                td.status-cell { strong { (j.status) } " " (j.percentage) "%" }
                                td {
                                    code { (j.output_prefix) }
                                    ul.compact {
                                        @for o in &j.outputs {
                                            li { (o.output_name) ": "
                                                @if o.file_id.is_empty() { span.muted { "not uploaded" } }
                                                @else { a href={ "/admin/files/" (o.file_id) } { "stored" } } }
                                        }
                                    }
                                }
                                td { (j.created) }
                                td {
                                    @if j.next.is_empty() { span.muted { "final" } } @else {
                                        form.inline method="post" action={ "/admin/jobs/" (j.id) } {
                                            input type="hidden" name="csrf" value=(chrome.csrf);
                                            label.sr-only for={ "st-" (j.id) } { "New status of job " (j.id) }
                                            select id={ "st-" (j.id) } name="status" {
                                                @for s in &j.next { option value=(s) { (s) } }
                                            }
                                            label.sr-only for={ "pc-" (j.id) } { "Percentage completed of job " (j.id) }
                                            input.narrow id={ "pc-" (j.id) } type="number" name="percentage_completed" min="0" max="100" placeholder="%";
                                            button type="submit" { "Apply" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(&v.pager))
            form.card #create-job method="post" action="/admin/jobs" {
                h2 { "New job" }
                input type="hidden" name="csrf" value=(chrome.csrf);
                div.field {
                    label for="new-job-pipeline" { "Pipeline" }
                    select #new-job-pipeline name="pipeline_id" required {
                        @for (pid, pname) in &v.pipelines { option value=(pid) { (pname) " (" (pid) ")" } }
                    }
                }
                div.field { label for="new-job-input" { "Input name" } input #new-job-input type="text" name="input_name" maxlength="1024"; }
                div.field { label for="new-job-input-file" { "Input file id (optional)" } input #new-job-input-file type="text" name="input_file_id" maxlength="24"; }
                div.field { label for="new-job-prefix" { "Output prefix" } input #new-job-prefix type="text" name="output_prefix" value="{job_id}/" maxlength="1024"; }
                div.field {
                    label for="new-job-outputs" { "Output names, one per line" }
                    textarea #new-job-outputs name="outputs" rows="3" required {}
                }
                p { button #create-job-submit type="submit" { "Create" } }
            }
        },
    )
}

#[derive(Debug, Clone, Default)]
pub struct KeyItem {
    pub id: u32,
    /// `current`, `active` or `retired`.
    pub state: &'static str,
    pub created: String,
    pub retired: String,
}

#[derive(Debug, Clone, Default)]
pub struct KeysView {
    pub keys: Vec<KeyItem>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub fn keys(chrome: &Chrome, v: &KeysView) -> Markup {
    page(
        "Signing keys",
        chrome,
        html! {
            h1 { "Link signing keys" }
            (flash(v.notice.as_deref(), v.error.as_deref()))
            p { "New links are signed with the current key. Links signed with an older active key keep working until they expire; a retired key's links stop at once." }
            div.table-wrap {
                table #keys {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "State" } th scope="col" { "Created" } th scope="col" { "Retired" } th scope="col" { "Retire" } } }
                    tbody {
                        @for k in &v.keys {
                            tr data-id=(k.id) data-state=(k.state) {
                                td { (k.id) }
                                td { @if k.state == "retired" { span.muted { "retired" } } @else if k.state == "current" { strong.ok { "current" } } @else { "active" } }
                                td { (k.created) }
                                td { (k.retired) }
                                td {
                                    @if k.state != "retired" {
                                        form.inline method="post" action={ "/admin/keys/" (k.id) "/retire" } {
                                            input type="hidden" name="csrf" value=(chrome.csrf);
                                            span.check {
                                                input type="checkbox" id={ "retire-" (k.id) } name="confirm" value="yes" required;
                                                label for={ "retire-" (k.id) } { "Yes, its links stop working" }
                                            }
                                            button.danger type="submit" aria-label={ "Retire key " (k.id) } { "Retire" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.card #rotate method="post" action="/admin/keys/rotate" {
                h2 { "Rotate" }
                p { "Creates a new key that signs every new link from now on. Existing links keep working." }
                input type="hidden" name="csrf" value=(chrome.csrf);
                button #rotate-submit type="submit" { "Rotate the signing key" }
            }
        },
    )
}
