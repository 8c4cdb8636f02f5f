//! Small binary payloads, base64-encoded, made for these tests.

/// A 1x1 PNG (one teal pixel, RGBA).
pub(crate) const TEST_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNgaGj4DwADhAIAiJfoPgAAAABJRU5ErkJggg==";

/// A 2 ms WAV clip: PCM, 8 kHz, mono, 8-bit, 16 samples.
pub(crate) const TEST_WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YRAAAACAgYKDgIGCg4CBgoOAgYKD";
