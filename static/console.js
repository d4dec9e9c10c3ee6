// filegate console: small enhancements only — every page works without this script.
// - buttons with data-copy="ID" copy that field's value (or element's text);
// - forms with data-progress (file uploads, suspect copies) upload with the progress
//   bar inside them (.upload-progress, .upload-status), then follow the answer.
'use strict';

function copyFrom(id, button) {
  const el = document.getElementById(id);
  if (!el) return;
  const text = 'value' in el ? el.value : el.textContent.trim();
  const done = () => {
    const was = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = was; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallback());
  } else {
    fallback();
  }
  function fallback() {
    // Plain http outside localhost has no clipboard API: select and copy.
    if (el.select) { el.focus(); el.select(); } else {
      const r = document.createRange(); r.selectNodeContents(el);
      const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
    }
    try { if (document.execCommand('copy')) done(); } catch (e) { /* the text stays selected */ }
  }
}

function uploadWithProgress(form, ev) {
  if (!window.FormData || !window.XMLHttpRequest) return;
  ev.preventDefault();
  const box = form.querySelector('.upload-progress');
  const bar = form.querySelector('progress');
  const status = form.querySelector('.upload-status');
  const submit = form.querySelector('button[type=submit]');
  if (box) box.hidden = false;
  if (submit) submit.disabled = true;
  const xhr = new XMLHttpRequest();
  xhr.open('POST', form.action);
  xhr.upload.addEventListener('progress', e => {
    if (!e.lengthComputable) return;
    const pct = Math.floor(e.loaded * 100 / e.total);
    bar.max = 100; bar.value = pct;
    status.textContent = pct + ' %';
  });
  xhr.addEventListener('load', () => {
    // A stored file redirects to its page; a refusal answers a page with the reason.
    if (xhr.status < 400 && xhr.responseURL && xhr.responseURL !== form.action) {
      window.location.assign(xhr.responseURL);
      return;
    }
    const doc = new DOMParser().parseFromString(xhr.responseText, 'text/html');
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    enhance();
  });
  xhr.addEventListener('error', () => {
    status.textContent = 'The upload failed (connection lost). Try again.';
    if (submit) submit.disabled = false;
  });
  xhr.send(new FormData(form));
}

function enhance() {
  document.querySelectorAll('button[data-copy]').forEach(b => {
    b.hidden = false;
    b.addEventListener('click', () => copyFrom(b.dataset.copy, b));
  });
  document.querySelectorAll('form[data-progress]').forEach(f => {
    f.addEventListener('submit', ev => uploadWithProgress(f, ev));
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', enhance);
} else {
  enhance();
}
