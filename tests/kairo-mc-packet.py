#! /usr/bin/env python3
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0

"""Builds and decodes memcached-over-UDP test packets for kairo-memcached.at.

  kairo-mc-packet.py build [OPTIONS] PAYLOAD
      Prints, as hex for "ovs-appctl netdev-dummy/receive", an
      Ethernet/IPv4/UDP packet whose UDP payload is the 8-byte memcached frame
      header followed by PAYLOAD (Python escapes such as \\r\\n allowed).
      With --split N, PAYLOAD is cut into datagrams of at most N bytes,
      frame header included, numbered 0 to n-1 of n, as memcached cuts a
      long reply, and one packet is printed per line.

  kairo-mc-packet.py decode FILE.pcap
      Prints one line per packet: addresses, ports, whether the IPv4 and UDP
      checksums are right, the frame header and the payload.
"""

import argparse
import struct
import sys


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(':'))


def ip_bytes(s):
    return bytes(int(x) for x in s.split('.'))


def fmt_mac(b):
    return ':'.join('%02x' % x for x in b)


def fmt_ip(b):
    return '.'.join(str(x) for x in b)


def csum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def build(args):
    text = args.payload.encode('latin1').decode('unicode_escape')
    text = text.encode('latin1')
    if args.split:
        chunk = args.split - 8
        parts = [text[i:i + chunk] for i in range(0, len(text), chunk)]
        for seq, part in enumerate(parts):
            build_one(args, struct.pack('!HHHH', args.reqid, seq,
                                        len(parts), 0) + part)
    elif args.no_frame:
        build_one(args, text)
    else:
        build_one(args, struct.pack('!HHHH', args.reqid, args.seq,
                                    args.total, 0) + text)


def build_one(args, payload):
    if args.truncate is not None:
        payload = payload[:args.truncate]
    src_ip, dst_ip = ip_bytes(args.src_ip), ip_bytes(args.dst_ip)
    udp_len = 8 + len(payload)
    udp = struct.pack('!HHHH', args.sport, args.dport, udp_len, 0) + payload
    if not args.no_csum:
        pseudo = src_ip + dst_ip + struct.pack('!BBH', 0, 17, udp_len)
        c = csum(pseudo + udp) or 0xffff
        udp = udp[:6] + struct.pack('!H', c) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1,
                     0x2000 if args.fragment else 0, 64, args.proto, 0,
                     src_ip, dst_ip)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    frame = (mac_bytes(args.dst_mac) + mac_bytes(args.src_mac)
             + struct.pack('!H', 0x0800) + ip + udp)
    print(frame.hex())


def packets(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic = data[:4]
    endian = '<' if magic == b'\xd4\xc3\xb2\xa1' else '>'
    ofs = 24
    while ofs + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + 'IIII', data[ofs:ofs + 16])
        ofs += 16
        yield data[ofs:ofs + incl]
        ofs += incl


def decode_one(pkt):
    dst, src = fmt_mac(pkt[0:6]), fmt_mac(pkt[6:12])
    eth_type = struct.unpack('!H', pkt[12:14])[0]
    out = 'dst=%s src=%s' % (dst, src)
    if eth_type != 0x0800:
        return out + ' type=0x%04x' % eth_type
    ip = pkt[14:]
    ihl = (ip[0] & 0xf) * 4
    tot_len = struct.unpack('!H', ip[2:4])[0]
    ip_ok = csum(ip[:ihl]) == 0
    out += ' ip=%s>%s ipcsum=%s' % (fmt_ip(ip[12:16]), fmt_ip(ip[16:20]),
                                     'ok' if ip_ok else 'BAD')
    if ip[9] != 17:
        return out + ' proto=%d' % ip[9]
    udp = ip[ihl:tot_len]
    sport, dport, udp_len, ucsum = struct.unpack('!HHHH', udp[:8])
    if ucsum == 0:
        state = 'none'
    else:
        pseudo = ip[12:20] + struct.pack('!BBH', 0, 17, udp_len)
        state = 'ok' if csum(pseudo + udp[:udp_len]) == 0 else 'BAD'
    out += ' udp=%d>%d udpcsum=%s' % (sport, dport, state)
    payload = udp[8:udp_len]
    if len(payload) >= 8:
        reqid, seq, total, _ = struct.unpack('!HHHH', payload[:8])
        out += ' frame=%d/%d/%d' % (reqid, seq, total)
        payload = payload[8:]
    return out + ' payload=%r' % payload


def decode(args):
    for pkt in packets(args.pcap):
        print(decode_one(pkt))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='cmd', required=True)
    b = sub.add_parser('build')
    b.add_argument('--src-mac', default='50:54:00:00:00:01')
    b.add_argument('--dst-mac', default='50:54:00:00:00:ff')
    b.add_argument('--src-ip', default='10.0.0.10')
    b.add_argument('--dst-ip', default='10.0.0.100')
    b.add_argument('--sport', type=int, default=40000)
    b.add_argument('--dport', type=int, default=11211)
    b.add_argument('--proto', type=int, default=17)
    b.add_argument('--reqid', type=int, default=1)
    b.add_argument('--seq', type=int, default=0)
    b.add_argument('--total', type=int, default=1)
    b.add_argument('--no-frame', action='store_true')
    b.add_argument('--no-csum', action='store_true')
    b.add_argument('--fragment', action='store_true')
    b.add_argument('--truncate', type=int)
    b.add_argument('--split', type=int)
    b.add_argument('payload')
    d = sub.add_parser('decode')
    d.add_argument('pcap')
    args = parser.parse_args()
    if args.cmd == 'build':
        build(args)
    else:
        decode(args)


if __name__ == '__main__':
    sys.exit(main())
