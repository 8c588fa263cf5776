//! `/assets/…`: the embedded stylesheet, script and icons, gzipped when the browser
//! accepts it. Hashed names are cached for a year; icons for a day.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = kith_assets::get(&path) else {
        return (StatusCode::NOT_FOUND, "No such file.").into_response();
    };
    let gzip = accepts_gzip(&headers);
    let cache =
        if kith_assets::is_immutable(asset) { "public, max-age=31536000, immutable" } else { "public, max-age=86400" };
    let mut response = if gzip { asset.gzip } else { asset.body }.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|part| {
            let mut bits = part.split(';');
            let coding = bits.next().unwrap_or("").trim();
            let refused = bits.any(|q| q.trim().replace(' ', "") == "q=0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}
