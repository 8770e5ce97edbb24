//! The XML the Queue and Blob services speak: message lists, blob listings, error bodies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

/// One `<QueueMessage>` of a Get Messages, Peek Messages or Put Message response. Peek leaves out
/// `PopReceipt` and `TimeNextVisible`; Put leaves out `DequeueCount` and `MessageText`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct RawMessage {
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "InsertionTime", default)]
    pub insertion_time: String,
    #[serde(rename = "PopReceipt", default)]
    pub pop_receipt: Option<String>,
    #[serde(rename = "TimeNextVisible", default)]
    pub time_next_visible: Option<String>,
    #[serde(rename = "DequeueCount", default)]
    pub dequeue_count: u32,
    #[serde(rename = "MessageText", default)]
    pub message_text: String,
}

#[derive(Deserialize)]
struct QueueMessagesList {
    #[serde(rename = "QueueMessage", default)]
    messages: Vec<RawMessage>,
}

/// The messages of a `<QueueMessagesList>`; entities in `MessageText` are unescaped.
pub(crate) fn parse_messages(body: &[u8]) -> Result<Vec<RawMessage>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    check_root(text, "QueueMessagesList")?;
    let list: QueueMessagesList =
        quick_xml::de::from_str(text).map_err(|e| format!("not a QueueMessagesList: {e}"))?;
    Ok(list.messages)
}

/// Fails unless the document's root element is `expected`: serde would happily read any document
/// (say a proxy's HTML page) as an empty list.
fn check_root(text: &str, expected: &str) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                let qname = e.name();
                let name: &str = qname.as_ref();
                return if name == expected {
                    Ok(())
                } else {
                    Err(format!("expected <{expected}>, got <{}>", name))
                };
            }
            Ok(quick_xml::events::Event::Eof) => {
                return Err(format!("expected <{expected}>, got no element"));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("not XML: {e}")),
        }
    }
}

/// The Put Message / Update Message body for an already-encoded message text.
pub(crate) fn message_body(text: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>{}</MessageText></QueueMessage>",
        quick_xml::escape::escape(text)
    )
}

/// A message body as the Azure SDKs write it: base64 of the bytes.
pub(crate) fn encode_body(body: &[u8]) -> String {
    BASE64.encode(body)
}

/// The bytes of a `MessageText`: its base64 decoding, or, when it is not valid base64 (a producer
/// that sent plain text), the text's own UTF-8 bytes. Plain text that happens to be valid base64
/// (for example `"abcd"`) is decoded; producers should base64-encode, as the SDKs do.
pub(crate) fn decode_body(text: &str) -> Vec<u8> {
    BASE64
        .decode(text.trim())
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}

#[derive(Deserialize)]
struct EnumerationResults {
    #[serde(rename = "Blobs", default)]
    blobs: Blobs,
    #[serde(rename = "NextMarker", default)]
    next_marker: Option<String>,
}

#[derive(Deserialize, Default)]
struct Blobs {
    #[serde(rename = "Blob", default)]
    blob: Vec<BlobItem>,
}

#[derive(Deserialize)]
struct BlobItem {
    #[serde(rename = "Name")]
    name: BlobName,
}

#[derive(Deserialize)]
struct BlobName {
    /// `Encoded="true"` when the name holds characters invalid in XML and is percent-encoded.
    #[serde(rename = "@Encoded", default)]
    encoded: Option<String>,
    #[serde(rename = "$text", default)]
    value: String,
}

/// One List Blobs page: the names and the marker of the next page (`None` on the last page).
pub(crate) fn parse_blob_list(body: &[u8]) -> Result<(Vec<String>, Option<String>), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    check_root(text, "EnumerationResults")?;
    let results: EnumerationResults =
        quick_xml::de::from_str(text).map_err(|e| format!("not an EnumerationResults: {e}"))?;
    let names = results
        .blobs
        .blob
        .into_iter()
        .map(|b| {
            if b.name.encoded.as_deref() == Some("true") {
                percent_decode(&b.name.value)
            } else {
                b.name.value
            }
        })
        .collect();
    Ok((names, results.next_marker.filter(|m| !m.is_empty())))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "Code", default)]
    code: Option<String>,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

/// `(Code, first line of Message)` from a storage `<Error>` body. Only these two elements are read:
/// `AuthenticationErrorDetail` is ignored because it echoes the request's signature.
pub(crate) fn parse_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(text) = std::str::from_utf8(body) else {
        return (None, None);
    };
    let parsed: ErrorBody = quick_xml::de::from_str(text).unwrap_or_default();
    let message = parsed
        .message
        .and_then(|m| m.lines().next().map(str::trim).map(str::to_string))
        .filter(|m| !m.is_empty());
    (parsed.code.filter(|c| !c.is_empty()), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Get Messages response shape from FACTS.md section 6, with entity-escaped plain text.
    const GET_MESSAGES: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<QueueMessagesList>
  <QueueMessage>
    <MessageId>5974b586-0df3-4e2d-ad0c-18e3892bfca2</MessageId>
    <InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime>
    <ExpirationTime>Fri, 16 Oct 2009 21:04:30 GMT</ExpirationTime>
    <PopReceipt>YzQ4Yzg1MDItYTc0Ny00OWNjLTkxYTUtZGM0MDFiZDAwYzEw</PopReceipt>
    <TimeNextVisible>Fri, 09 Oct 2009 23:29:20 GMT</TimeNextVisible>
    <DequeueCount>1</DequeueCount>
    <MessageText>PHRlc3Q+PC90ZXN0Pg==</MessageText>
  </QueueMessage>
  <QueueMessage>
    <MessageId>m2</MessageId>
    <InsertionTime>Fri, 09 Oct 2009 21:04:31 GMT</InsertionTime>
    <ExpirationTime>Fri, 16 Oct 2009 21:04:31 GMT</ExpirationTime>
    <PopReceipt>AgAAAAMAAAAAAAAA+/=</PopReceipt>
    <TimeNextVisible>Fri, 09 Oct 2009 23:29:21 GMT</TimeNextVisible>
    <DequeueCount>3</DequeueCount>
    <MessageText>plain &lt;job id=&quot;7&quot;&gt; &amp; more &#233;</MessageText>
  </QueueMessage>
</QueueMessagesList>"#;

    #[test]
    fn parses_get_messages_with_escaped_text() {
        let msgs = parse_messages(GET_MESSAGES.as_bytes()).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].message_id, "5974b586-0df3-4e2d-ad0c-18e3892bfca2");
        assert_eq!(
            msgs[0].pop_receipt.as_deref(),
            Some("YzQ4Yzg1MDItYTc0Ny00OWNjLTkxYTUtZGM0MDFiZDAwYzEw")
        );
        assert_eq!(
            msgs[0].time_next_visible.as_deref(),
            Some("Fri, 09 Oct 2009 23:29:20 GMT")
        );
        assert_eq!(msgs[0].insertion_time, "Fri, 09 Oct 2009 21:04:30 GMT");
        assert_eq!(msgs[0].dequeue_count, 1);
        assert_eq!(decode_body(&msgs[0].message_text), b"<test></test>");
        assert_eq!(msgs[1].dequeue_count, 3);
        assert_eq!(msgs[1].message_text, "plain <job id=\"7\"> & more é");
        // Not base64: the raw text comes back.
        assert_eq!(
            decode_body(&msgs[1].message_text),
            "plain <job id=\"7\"> & more é".as_bytes()
        );
    }

    #[test]
    fn parses_empty_lists_and_peek_and_put_shapes() {
        assert!(
            parse_messages(b"<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList />")
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_messages(b"<QueueMessagesList></QueueMessagesList>")
                .unwrap()
                .is_empty()
        );
        let peek = parse_messages(
            b"<QueueMessagesList><QueueMessage><MessageId>p</MessageId><InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime>\
              <ExpirationTime>x</ExpirationTime><DequeueCount>0</DequeueCount><MessageText></MessageText></QueueMessage></QueueMessagesList>",
        )
        .unwrap();
        assert_eq!(peek[0].pop_receipt, None);
        assert_eq!(peek[0].message_text, "");
        let put = parse_messages(
            b"<QueueMessagesList><QueueMessage><MessageId>n</MessageId><InsertionTime>t</InsertionTime><ExpirationTime>t</ExpirationTime>\
              <PopReceipt>r</PopReceipt><TimeNextVisible>t</TimeNextVisible></QueueMessage></QueueMessagesList>",
        )
        .unwrap();
        assert_eq!(put[0].message_id, "n");
        assert!(parse_messages(b"<html>proxy error</html>").is_err());
    }

    #[test]
    fn message_body_round_trips() {
        let body = message_body(&encode_body(b"three <&> \"quoted\""));
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessage><MessageText>dGhyZWUgPCY+ICJxdW90ZWQi</MessageText></QueueMessage>"
        );
        assert_eq!(
            decode_body("dGhyZWUgPCY+ICJxdW90ZWQi"),
            b"three <&> \"quoted\""
        );
        assert!(message_body("a<b&c").contains("a&lt;b&amp;c"));
    }

    #[test]
    fn parses_blob_listing_pages() {
        let page = br#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="c">
  <Prefix>ledger/</Prefix><MaxResults>2</MaxResults>
  <Blobs>
    <Blob><Name>ledger/a &amp; b</Name><Properties><Etag>0x1</Etag></Properties></Blob>
    <Blob><Name Encoded="true">ledger/%EF%BF%BE</Name><Properties/></Blob>
  </Blobs>
  <NextMarker>2!80!MDAwMDE2</NextMarker>
</EnumerationResults>"#;
        let (names, next) = parse_blob_list(page).unwrap();
        assert_eq!(
            names,
            vec!["ledger/a & b".to_string(), "ledger/\u{FFFE}".to_string()]
        );
        assert_eq!(next.as_deref(), Some("2!80!MDAwMDE2"));
        let (names, next) =
            parse_blob_list(b"<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>")
                .unwrap();
        assert!(names.is_empty());
        assert_eq!(next, None);
    }

    #[test]
    fn parses_error_bodies() {
        let (code, message) = parse_error(
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code>\
              <Message>Server failed to authenticate the request.\nRequestId:1\nTime:2</Message>\
              <AuthenticationErrorDetail>The MAC signature found in the HTTP request 'SECRET' is not the same</AuthenticationErrorDetail></Error>",
        );
        assert_eq!(code.as_deref(), Some("AuthenticationFailed"));
        assert_eq!(
            message.as_deref(),
            Some("Server failed to authenticate the request.")
        );
        assert_eq!(parse_error(b"not xml"), (None, None));
    }
}
