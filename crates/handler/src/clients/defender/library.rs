//! The live response library (`/api/libraryfiles`): the scripts and files live response can run
//! on or copy to devices.

use reqwest::Method;
use reqwest::header::HeaderValue;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefenderClient, ValueList};
use crate::outbound::{Api, ApiError, ApiRequest, Replay};
use crate::tenants::TenantId;

/// Defender's documented limit for one library file.
pub const MAX_LIBRARY_FILE_BYTES: usize = 20 * 1024 * 1024;

/// A library file name: a plain file name, since it becomes part of a URL path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct LibraryFileName(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a library file name: use a plain file name such as Collect-Triage.ps1 (1-255 characters, no path separators, no ? # % or control characters)"
)]
pub struct InvalidLibraryFileName(String);

impl TryFrom<String> for LibraryFileName {
    type Error = InvalidLibraryFileName;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let trimmed = text.trim();
        let valid = !trimmed.is_empty()
            && trimmed.chars().count() <= 255
            && trimmed != "."
            && trimmed != ".."
            && !trimmed
                .chars()
                .any(|c| matches!(c, '/' | '\\' | '?' | '#' | '%' | '"') || c.is_control());
        if valid {
            Ok(Self(trimmed.to_string()))
        } else {
            Err(InvalidLibraryFileName(trimmed.chars().take(64).collect()))
        }
    }
}

impl From<LibraryFileName> for String {
    fn from(name: LibraryFileName) -> Self {
        name.0
    }
}

impl LibraryFileName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryFile {
    pub file_name: String,
    pub sha256: Option<String>,
    pub description: Option<String>,
    pub has_parameters: Option<bool>,
    pub parameters_description: Option<String>,
    pub created_by: Option<String>,
    pub creation_time: Option<String>,
    pub last_updated_time: Option<String>,
}

pub struct LibraryUpload<'a> {
    pub file_name: &'a LibraryFileName,
    pub content: &'a [u8],
    pub description: &'a str,
    pub parameters_description: Option<&'a str>,
    pub override_if_exists: bool,
}

impl LibraryUpload<'_> {
    /// The multipart form Defender expects (`file` plus text fields).
    fn form(&self, boundary: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.content.len() + 1024);
        let mut text = |name: &str, value: &str| {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
            );
        };
        text("Description", self.description);
        text(
            "HasParameters",
            if self.parameters_description.is_some() {
                "true"
            } else {
                "false"
            },
        );
        text(
            "ParametersDescription",
            self.parameters_description.unwrap_or_default(),
        );
        text(
            "OverrideIfExists",
            if self.override_if_exists {
                "true"
            } else {
                "false"
            },
        );
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                self.file_name.as_str()
            )
            .as_bytes(),
        );
        body.extend_from_slice(self.content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    }
}

impl DefenderClient {
    pub async fn list_library(&self, tenant: &TenantId) -> Result<Vec<LibraryFile>, ApiError> {
        let url = self.http.url(Api::Defender, "/api/libraryfiles", &[]);
        Ok(self
            .http
            .json::<ValueList<LibraryFile>>(&ApiRequest::get(Api::Defender, tenant, url))
            .await?
            .value)
    }

    pub async fn upload_library(
        &self,
        tenant: &TenantId,
        upload: &LibraryUpload<'_>,
    ) -> Result<LibraryFile, ApiError> {
        let url = self.http.url(Api::Defender, "/api/libraryfiles", &[]);
        // A random boundary cannot occur in the content by accident.
        let boundary = format!("----mcp-{}", uuid::Uuid::new_v4().simple());
        let content_type = HeaderValue::from_str(&format!(
            "multipart/form-data; boundary={boundary}"
        ))
        .map_err(|_| ApiError::Decode {
            api: Api::Defender,
            detail: "the multipart boundary is not a header value".into(),
        })?;
        // Without OverrideIfExists a resend would be refused as a conflict; with it, it could
        // replace a file someone changed meanwhile. Either way it is not repeated blindly.
        let request = ApiRequest::send_encoded(
            Api::Defender,
            tenant,
            Method::POST,
            url,
            content_type,
            upload.form(&boundary).into(),
            Replay::Unsafe,
        );
        self.http.json(&request).await
    }

    pub async fn delete_library(
        &self,
        tenant: &TenantId,
        name: &LibraryFileName,
    ) -> Result<(), ApiError> {
        self.delete(tenant, &format!("/api/libraryfiles/{}", name.as_str()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_escape_the_library_path() {
        assert!(LibraryFileName::try_from("Collect-Triage.ps1".to_string()).is_ok());
        for bad in [
            "../x.ps1", "a/b.ps1", "a\\b.ps1", "", "x?.ps1", "..", "a%2f.ps1",
        ] {
            assert!(LibraryFileName::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_form_carries_the_file_and_its_settings() {
        let name = LibraryFileName::try_from("x.ps1".to_string()).expect("name");
        let upload = LibraryUpload {
            file_name: &name,
            content: b"Write-Output 1",
            description: "test",
            parameters_description: Some("-Name <n>"),
            override_if_exists: true,
        };
        let form = String::from_utf8(upload.form("B")).expect("text");
        assert!(
            form.contains("name=\"file\"; filename=\"x.ps1\"\r\nContent-Type: application/octet-stream\r\n\r\nWrite-Output 1\r\n--B--")
        );
        assert!(form.contains("name=\"HasParameters\"\r\n\r\ntrue\r\n"));
        assert!(form.contains("name=\"OverrideIfExists\"\r\n\r\ntrue\r\n"));
    }
}
