#!/bin/sh
echo "${GREETING:-hello} from a kiln-built image"
