//! Sending one HTTP request, with OAuth when the transport has it: the access token goes in
//! `Authorization`, and a `401` or `403 insufficient_scope` answer runs the authorization flow
//! before the request is sent again (see [`crate::client::oauth`]).
//!
//! Every exchange of the transport (POSTs of both eras, the `GET` streams and their
//! resumptions, the re-initialization, the era probe) goes through [`Shared::execute`], so
//! all of them are authorized the same way.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::{HttpError, Shared};
use crate::client::oauth::authorizer::{Attempts, Authorizer, Next};

/// A request kept apart so that it can be sent again.
struct Resendable {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Resendable {
    async fn new(request: Request<Full<Bytes>>) -> Resendable {
        let (parts, body) = request.into_parts();
        // Collecting a `Full` body cannot fail (its error type is `Infallible`).
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        Resendable {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            body,
        }
    }

    fn request(&self, authorization: Vec<(HeaderName, HeaderValue)>) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        for (name, value) in authorization {
            request.headers_mut().insert(name, value);
        }
        request
    }
}

impl Shared {
    /// Sends `request` and waits (up to the configured request timeout) for the head of its
    /// answer, authorizing as needed.
    pub(super) async fn execute(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, HttpError> {
        self.execute_within(request, self.config.request_timeout)
            .await
    }

    /// As [`execute`](Self::execute), waiting up to `timeout` for each answer head; the
    /// authorization flows in between are not counted (a user may take minutes to log in).
    pub(super) async fn execute_within(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, HttpError> {
        match &self.oauth {
            None => self.send(request, timeout).await,
            Some(oauth) => self.send_authorized(oauth, request, timeout).await,
        }
    }

    /// Sends `request` with the current access token, if any, but never runs a flow.
    pub(super) async fn execute_once(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, HttpError> {
        let Some(oauth) = &self.oauth else {
            return self.send(request, self.config.request_timeout).await;
        };
        let request = Resendable::new(request).await;
        let credential = oauth.credential(&request.method).await;
        self.send(
            request.request(credential.headers),
            self.config.request_timeout,
        )
        .await
    }

    async fn send_authorized(
        &self,
        oauth: &Authorizer,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, HttpError> {
        let request = Resendable::new(request).await;
        let mut attempts = Attempts::default();
        loop {
            let credential = oauth.credential(&request.method).await;
            let resp = self
                .send(request.request(credential.headers), timeout)
                .await?;
            let next = oauth
                .answered(
                    resp.status(),
                    resp.headers(),
                    credential.generation,
                    &mut attempts,
                )
                .await
                .map_err(HttpError::Authorization)?;
            match next {
                Next::Done => return Ok(resp),
                Next::Retry => tracing::debug!(
                    method = %request.method,
                    status = %resp.status(),
                    "sending the request again with the new access token"
                ),
            }
        }
    }

    /// Sends `request` and waits up to `timeout` for the head of its answer.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, HttpError> {
        let method = request.method().clone();
        match tokio::time::timeout(timeout, self.http.request(request)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(source)) => Err(HttpError::Send {
                method,
                uri: self.uri.to_string(),
                source,
            }),
            Err(_) => Err(HttpError::NoAnswer {
                method,
                uri: self.uri.to_string(),
                timeout,
            }),
        }
    }
}
