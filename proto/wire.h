/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

#include "fnbox.pb-c.h"

/* One Fnbox__Envelope per SOCK_SEQPACKET packet.
 *
 * A packet is an 8-byte header followed by data:
 *   byte 0: 'F' (the 8-byte magic/kind byte), byte 1: flags, bytes 2..3: zero,
 *   bytes 4..7: little-endian uint32 length of the packed Envelope.
 * flags bit 0 (WIRE_FLAG_MEMFD): the packed Envelope is not inline; it is in a memfd sealed with
 *   F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_SEAL and passed as the first SCM_RIGHTS fd; the
 *   receiver checks the seals and that its size equals the header's length.
 * flags bit 1 (WIRE_FLAG_FD): one extra fd is attached (after the memfd, if any) and handed to the
 *   receiver with the message (used for the log memfd in Ready).
 * Envelopes whose packed size is <= WIRE_INLINE_MAX travel inline; larger ones (up to
 * WIRE_MESSAGE_MAX) in a memfd. Anything else is refused with -EBADMSG before unpacking; the
 * caller then treats the peer as broken (the daemon kills that sandbox). */

#define WIRE_HEADER_SIZE 8u
#define WIRE_INLINE_MAX (60u * 1024u)
#define WIRE_MESSAGE_MAX (16u * 1024u * 1024u)
#define WIRE_FLAG_MEMFD 0x1u
#define WIRE_FLAG_FD 0x2u

/* Packs and sends env. extra_fd < 0 means none. Non-blocking sends that would block return
 * -EAGAIN (the packet is not sent). Returns 0 or -errno. Callable from daemon and agent. */
int wire_send(int sock, const Fnbox__Envelope *env, int extra_fd);

/* Receives one packet and unpacks it. *ret is freed with wire_envelope_free(). *ret_fd (may be
 * NULL: then an attached fd is closed) gets the extra fd or -EBADF. Returns 0, -EAGAIN when
 * nothing is waiting on a non-blocking socket, -ECONNRESET on EOF, -EBADMSG on a malformed or
 * oversized packet, or another -errno. */
int wire_recv(int sock, Fnbox__Envelope **ret, int *ret_fd);

void wire_envelope_free(Fnbox__Envelope *env);
