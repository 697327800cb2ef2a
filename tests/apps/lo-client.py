#!/usr/bin/env python3
# lo-client.py PORT make TEXT: a new Writer document in LibreOffice (listening with --accept on
# 127.0.0.1:PORT) whose text is TEXT, left open, unsaved. lo-client.py PORT list: every open
# document's text and whether it is modified, one per line ('TEXT' True).
import sys
import uno

port, what = int(sys.argv[1]), sys.argv[2]
local = uno.getComponentContext()
resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
ctx = resolver.resolve(f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext")
desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
if what == "make":
    doc = desktop.loadComponentFromURL("private:factory/swriter", "_blank", 0, ())
    doc.Text.setString(sys.argv[3])
    print("made")
else:
    docs = desktop.Components.createEnumeration()
    while docs.hasMoreElements():
        d = docs.nextElement()
        print(repr(d.Text.getString()), d.isModified())
