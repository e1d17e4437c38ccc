//! iam service module. TODO: placeholder signatures; replaced by the module's author.

use crate::Clients;
use moodlestack_model::{
    CloudError, DeleteOptions, Fields, Kind, Observed, Readiness, Resource, ResourceId, Scope, Want,
};

fn todo(what: &str) -> CloudError {
    CloudError::Other(format!("iam: {what} is not built yet"))
}

pub async fn observe(_c: &Clients, _scope: &Scope, _desired: &[Resource]) -> Result<Vec<Observed>, CloudError> {
    Ok(Vec::new())
}

pub async fn create(_c: &Clients, _scope: &Scope, _id: &ResourceId, _kind: Kind, _fields: &Fields) -> Result<Observed, CloudError> {
    Err(todo("create"))
}

pub async fn update(_c: &Clients, _scope: &Scope, _current: &Observed, _fields: &Fields, _changed: &[String]) -> Result<Observed, CloudError> {
    Err(todo("update"))
}

pub async fn delete(_c: &Clients, _scope: &Scope, _current: &Observed, _options: &DeleteOptions) -> Result<(), CloudError> {
    Err(todo("delete"))
}

pub async fn poll(_c: &Clients, _scope: &Scope, _current: &Observed, _want: Want) -> Result<Readiness, CloudError> {
    Err(todo("poll"))
}
