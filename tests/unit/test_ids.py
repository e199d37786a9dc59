"""Ids: well formed, unique across threads, and never repeated by a forked process."""

import os
import re
import threading

from apex.ids import new_id


def test_ids_are_32_hex_characters_unique_and_ordered_by_time() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert len(set(ids)) == len(ids)
    assert [value[:12] for value in ids] == sorted(value[:12] for value in ids)


def test_threads_draw_different_random_parts() -> None:
    drawn: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(new_id()[12:] for _ in range(2_000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [part for into in drawn for part in into]
    assert len(set(every)) == len(every) == 8_000


def test_a_forked_child_never_repeats_its_parents_random_parts() -> None:
    new_id()  # the parent holds a buffer when it forks
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        os.write(write_end, "".join(new_id()[12:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(child, 0)
    from_child = {text[i : i + 20] for i in range(0, len(text), 20)}
    from_parent = {new_id()[12:] for _ in range(50)}
    assert len(from_child) == 50
    assert not from_child & from_parent
