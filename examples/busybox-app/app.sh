#!/bin/sh
echo "$(cat /app/greeting.txt) (running as $(id -un) in $(hostname))"
