/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Intrusive doubly-linked lists: an item has `prev` and `next` pointers of its own type, the
 * list is a head pointer. O(1) prepend and remove, no allocation. */

#define LIST_PREPEND(head, item)                                                                   \
        do {                                                                                       \
                __typeof__(item) _li = (item);                                                     \
                _li->prev = NULL;                                                                  \
                _li->next = (head);                                                                \
                if (_li->next)                                                                     \
                        _li->next->prev = _li;                                                     \
                (head) = _li;                                                                      \
        } while (0)

/* item must be in the list that head starts. */
#define LIST_REMOVE(head, item)                                                                    \
        do {                                                                                       \
                __typeof__(item) _lr = (item);                                                     \
                if (_lr->prev)                                                                     \
                        _lr->prev->next = _lr->next;                                               \
                else                                                                               \
                        (head) = _lr->next;                                                        \
                if (_lr->next)                                                                     \
                        _lr->next->prev = _lr->prev;                                               \
                _lr->prev = _lr->next = NULL;                                                      \
        } while (0)
