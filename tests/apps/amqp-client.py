#!/usr/bin/env python3
"""AMQP 0-9-1 client of the rabbitmq case (tests/apps/run-apps.sh), on python3-pika.

  amqp-client.py PORT consume QUEUE   declares QUEUE (durable), prints "ready", then each
                                      message's body on its line as it comes (acked), on the
                                      same connection; ends after the body "stop" ("bye")
  amqp-client.py PORT publish QUEUE BODY...  declares QUEUE, publishes each BODY persistent with
                                      publisher confirms; prints "published N"
  amqp-client.py PORT get QUEUE       takes every message of QUEUE (basic.get, acked); prints
                                      their bodies joined by spaces
"""
import sys

import pika


def main():
    port, mode, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    conn = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=port))
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    if mode == "consume":
        print("ready", flush=True)
        for method, _props, body in ch.consume(queue):
            ch.basic_ack(method.delivery_tag)
            text = body.decode()
            print(text, flush=True)
            if text == "stop":
                break
        print("bye", flush=True)
    elif mode == "publish":
        ch.confirm_delivery()
        for body in sys.argv[4:]:
            ch.basic_publish("", queue, body.encode(), pika.BasicProperties(delivery_mode=2), mandatory=True)
        print("published %d" % len(sys.argv[4:]), flush=True)
    elif mode == "get":
        got = []
        while True:
            method, _props, body = ch.basic_get(queue)
            if method is None:
                break
            ch.basic_ack(method.delivery_tag)
            got.append(body.decode())
        print(" ".join(got), flush=True)
    conn.close()


if __name__ == "__main__":
    main()
