//! HTTP handlers, one module per resource; `render` shapes every answer.

pub mod assets;
pub mod health;
pub mod oauth2;
pub mod params;
pub mod render;
