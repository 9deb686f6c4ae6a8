"""Run a uipy Stack on a host link in a background thread (host only).

    t = StackThread(stack, nic).start()
    t.call(lambda s: s.ping("198.18.0.1", 1))   # runs inside the loop thread
    t.stop()                                      # re-raises a loop exception

The stack is single-threaded: after start() only the loop thread may touch it,
so everything else goes through call(). The loop polls; when a poll handled
no frame it waits on the nic's fileno() (and a wake-up pipe that call() writes
to) for up to idle_s, or sleeps 1 ms when the nic has no fileno().
"""
import os
import queue
import select
import threading
import time


class StackThread:
    def __init__(self, stack, nic=None, idle_s=0.005):
        self.stack = stack
        self.nic = nic if nic is not None else stack.nic
        self.idle_s = idle_s
        self.error = None
        self._calls = queue.Queue()
        self._running = False
        self._thread = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        try:
            self._fds = [self.nic.fileno(), self._wake_r]
        except (AttributeError, OSError):
            self._fds = None

    def start(self):
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="uipy-stack", daemon=True)
        self._thread.start()
        return self

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass                      # pipe full (the loop is awake anyway) or closed

    def _loop(self):
        stack = self.stack
        calls = self._calls
        try:
            while self._running:
                handled = stack.poll()
                ran = False
                while True:            # calls run right after a poll: stack.now is fresh
                    try:
                        fn, reply = calls.get_nowait()
                    except queue.Empty:
                        break
                    ran = True
                    try:
                        reply.put((True, fn(stack)))
                    except BaseException as e:   # the caller's error, handed back
                        reply.put((False, e))
                if handled or ran:
                    continue
                if self._fds is None:
                    time.sleep(0.001)
                    continue
                r, _, _ = select.select(self._fds, [], [], self.idle_s)
                if self._wake_r in r:
                    try:
                        os.read(self._wake_r, 512)
                    except BlockingIOError:
                        pass
        except BaseException as e:
            self.error = e
        finally:
            self._running = False

    def call(self, fn, timeout=5.0):
        """Run fn(stack) in the loop thread and return its result (or raise its error)."""
        if not self.alive():
            raise RuntimeError("uipy StackThread is not running (error: %r)" % (self.error,))
        reply = queue.Queue(1)
        self._calls.put((fn, reply))
        self._wake()
        try:
            ok, value = reply.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("uipy StackThread: call not run within %.1f s" % timeout) from None
        if not ok:
            raise value
        return value

    def alive(self):
        return self._running and self._thread is not None and self._thread.is_alive()

    def stop(self, timeout=2.0):
        """Stop and join the loop (bounded); re-raise an exception the loop died of."""
        self._running = False
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("uipy StackThread did not stop within %.1f s" % timeout)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
