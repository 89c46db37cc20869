//! What an event publishes over MQTT: the event itself on
//! `<prefix>/<event type>`, and, with Home Assistant's discovery, each
//! enrolled person as a device with two sensors ("Last seen", a timestamp,
//! and "Similarity" of that sighting) fed by `<prefix>/person/<id>/state`,
//! so they appear without any YAML. Discovery configs and states are
//! retained; a deleted (or merged) person's are cleared.
use serde_json::{Value, json};

use super::MqttConfig;

/// One MQTT message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// The sensors of one person: (object id suffix, name, value template, extra fields).
const SENSORS: [(&str, &str, &str); 2] = [
    ("last_seen", "Last seen", "{{ value_json.last_seen }}"),
    ("similarity", "Similarity", "{{ value_json.similarity }}"),
];

fn state_topic(c: &MqttConfig, person: &str) -> String {
    format!("{}/person/{person}/state", c.prefix)
}

fn config_topic(discovery: &str, person: &str, sensor: &str) -> String {
    format!("{discovery}/sensor/visage/{person}_{sensor}/config")
}

/// The retained discovery configs that make a person a device with its sensors.
pub fn person_sensors(c: &MqttConfig, person: &str, name: &str) -> Vec<Message> {
    let Some(discovery) = &c.discovery_prefix else { return Vec::new() };
    SENSORS
        .iter()
        .map(|(sensor, label, template)| {
            let mut config = json!({
                "name": label,
                "unique_id": format!("visage_{person}_{sensor}"),
                "state_topic": state_topic(c, person),
                "value_template": template,
                "json_attributes_topic": state_topic(c, person),
                "availability_topic": c.status_topic(),
                "device": {
                    "identifiers": [format!("visage_{person}")],
                    "name": name,
                    "manufacturer": "visage",
                    "model": "enrolled person",
                },
            });
            if *sensor == "last_seen" {
                config["device_class"] = json!("timestamp");
            } else {
                config["state_class"] = json!("measurement");
            }
            Message {
                topic: config_topic(discovery, person, sensor),
                payload: config.to_string().into_bytes(),
                retain: true,
            }
        })
        .collect()
}

/// Empty retained messages: Home Assistant removes the person's sensors.
fn person_removed(c: &MqttConfig, person: &str) -> Vec<Message> {
    let Some(discovery) = &c.discovery_prefix else { return Vec::new() };
    let mut out: Vec<Message> = SENSORS
        .iter()
        .map(|(sensor, _, _)| Message {
            topic: config_topic(discovery, person, sensor),
            payload: Vec::new(),
            retain: true,
        })
        .collect();
    out.push(Message { topic: state_topic(c, person), payload: Vec::new(), retain: true });
    out
}

/// Everything one event publishes, in order: the event, then what Home
/// Assistant keeps of it.
pub fn messages(c: &MqttConfig, id: &str, kind: &str, at: &str, data: &Value) -> Vec<Message> {
    let body = json!({"id": id, "type": kind, "timestamp": at, "data": data});
    let mut out =
        vec![Message { topic: format!("{}/{kind}", c.prefix), payload: body.to_string().into_bytes(), retain: false }];
    if c.discovery_prefix.is_none() {
        return out;
    }
    let person = |v: &Value| (v["id"].as_str().map(str::to_string), v["name"].as_str().unwrap_or_default().to_string());
    match kind {
        "person.created" | "person.updated" => {
            if let (Some(p), name) = person(&data["person"]) {
                out.extend(person_sensors(c, &p, &name));
            }
        }
        "person.deleted" => {
            if let (Some(p), _) = person(&data["person"]) {
                out.extend(person_removed(c, &p));
            }
        }
        "person.merged" => {
            for merged in data["merged"].as_array().into_iter().flatten() {
                if let (Some(p), _) = person(merged) {
                    out.extend(person_removed(c, &p));
                }
            }
        }
        "identify.identified" => {
            if let Some(p) = data["match"]["person_id"].as_str() {
                let state = json!({
                    "last_seen": at,
                    "similarity": data["match"]["similarity"],
                    "source": data["source"],
                    "external_id": data["external_id"],
                });
                out.push(Message { topic: state_topic(c, p), payload: state.to_string().into_bytes(), retain: true });
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(discovery: Option<&str>) -> MqttConfig {
        MqttConfig {
            url: "mqtt://b".into(),
            user: None,
            password: None,
            prefix: "visage".into(),
            discovery_prefix: discovery.map(Into::into),
            ca_file: None,
            client_id: "t".into(),
        }
    }

    #[test]
    fn an_identified_face_updates_its_persons_sensors() {
        let c = config(Some("homeassistant"));
        let data = json!({"match": {"person_id": "p1", "name": "Alice", "similarity": 0.8}, "source": "door"});
        let m = messages(&c, "e1", "identify.identified", "2026-12-07T10:00:00Z", &data);
        assert_eq!(m[0].topic, "visage/identify.identified");
        assert!(!m[0].retain);
        let event: Value = serde_json::from_slice(&m[0].payload).unwrap();
        assert_eq!((event["id"].as_str(), &event["data"]), (Some("e1"), &data));
        assert_eq!((m[1].topic.as_str(), m[1].retain), ("visage/person/p1/state", true));
        let state: Value = serde_json::from_slice(&m[1].payload).unwrap();
        assert_eq!(
            state,
            json!({"last_seen": "2026-12-07T10:00:00Z", "similarity": 0.8, "source": "door", "external_id": null})
        );
    }

    #[test]
    fn persons_appear_and_disappear_as_devices() {
        let c = config(Some("ha"));
        let created = messages(&c, "e", "person.created", "t", &json!({"person": {"id": "p1", "name": "Alice"}}));
        let topics: Vec<&str> = created.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics,
            ["visage/person.created", "ha/sensor/visage/p1_last_seen/config", "ha/sensor/visage/p1_similarity/config"]
        );
        let sensor: Value = serde_json::from_slice(&created[1].payload).unwrap();
        assert_eq!(
            (sensor["device"]["name"].as_str(), sensor["device_class"].as_str()),
            (Some("Alice"), Some("timestamp"))
        );
        assert_eq!(sensor["state_topic"], "visage/person/p1/state");
        assert_eq!(sensor["availability_topic"], "visage/status");
        let deleted = messages(&c, "e", "person.deleted", "t", &json!({"person": {"id": "p1", "name": "Alice"}}));
        assert_eq!(deleted.len(), 4);
        assert!(deleted[1..].iter().all(|m| m.retain && m.payload.is_empty()));
        // Without discovery: the event only.
        assert_eq!(messages(&config(None), "e", "person.created", "t", &json!({"person": {"id": "p1"}})).len(), 1);
    }
}
