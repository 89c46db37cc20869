#!/usr/bin/env python3
"""An MQTT subscriber for the tests, with `paho-mqtt` (as a user's would
be): subscribes to every topic of the broker on 127.0.0.1:PORT and records
each message as a JSON line on standard output ({"topic", "payload" as
text, "retain"}); prints {"subscribed": true} each time its subscription
is in place (again after the broker comes back).

    subscriber.py PORT
"""
import json
import sys

import paho.mqtt.client as mqtt


def record(**fields):
    print(json.dumps(fields), flush=True)


def on_connect(client, userdata, flags, reason_code, properties):
    client.subscribe("#", qos=1)


def on_subscribe(client, userdata, mid, reason_codes, properties):
    record(subscribed=True)


def on_message(client, userdata, msg):
    record(topic=msg.topic, payload=msg.payload.decode("utf-8", "replace"), retain=bool(msg.retain))


# A persistent session: what is published while it is away (the broker
# restarting) is queued for it at QoS 1, as for a subscriber in service.
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="visage-test-subscriber", clean_session=False)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.reconnect_delay_set(min_delay=1, max_delay=1)
client.connect("127.0.0.1", int(sys.argv[1]))
client.loop_forever(retry_first_connection=True)
