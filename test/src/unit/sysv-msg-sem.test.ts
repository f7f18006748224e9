import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyMessage, IPC, listMsgQueues, listSemSets, removeIpcObject, semValues, sendMessage, setSemValues, SYS, syscall } from '@amber/core';
import { frameMessage, unframeMessages } from '@amber/plugin-ipc/dist/msg';

test("a queue's messages as CRIU frames them after its entry (u32 length, ipc_msg, bytes padded to 8) read back the same", () => {
  const messages = [0, 1, 7, 8, 9, 3000].map((n, i) => ({ mtype: BigInt(i * 1000 + 1) << BigInt(i * 7), text: Buffer.alloc(n, i + 1) }));
  const blob = Buffer.concat(messages.map((m) => frameMessage(m.mtype, m.text)));
  let at = 0;
  for (const m of messages) at += 4 + blob.readUInt32LE(at) + Math.ceil(m.text.length / 8) * 8;
  assert.equal(at, blob.length, "each message's bytes are padded to 8");
  assert.deepEqual(unframeMessages(blob, messages.length), messages);
});

test('MSG_COPY reads every message of a live queue without taking it; /proc/sysvipc/msg and sem show what was made', () => {
  const id = syscall('msgget', SYS.msgget, [0, IPC.CREAT | 0o640]);
  try {
    sendMessage(id, 5n, Buffer.from('first'));
    sendMessage(id, 9n, Buffer.alloc(0));
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(copyMessage(id, 0, 100), { mtype: 5n, text: Buffer.from('first') });
      assert.deepEqual(copyMessage(id, 1, 100), { mtype: 9n, text: Buffer.alloc(0) });
      assert.equal(copyMessage(id, 2, 100), undefined, 'nothing past the last');
    }
    const q = listMsgQueues().find((x) => x.id === id);
    assert.deepEqual([q?.key, q?.mode, q?.qnum, q?.cbytes, q?.lspid], [0, 0o640, 2, 5, process.pid]);
  } finally {
    removeIpcObject('msg', id);
  }
  const s = syscall('semget', SYS.semget, [0, 3, IPC.CREAT | 0o600]);
  try {
    setSemValues(s, [1, 32767, 0]);
    assert.deepEqual(semValues(s, 3), [1, 32767, 0]);
    const set = listSemSets().find((x) => x.id === s);
    assert.deepEqual([set?.nsems, set?.mode, set?.uid], [3, 0o600, process.getuid?.()]);
  } finally {
    removeIpcObject('sem', s);
  }
});
