# jobengine stdout callback: the default output, one JSON line per event.
#
# ansible-playbook loads this file as its stdout callback
# (ANSIBLE_STDOUT_CALLBACK=jobengine). Every event of the run -- a playbook,
# play or task starting, a host's result, the recap -- is written as one JSON
# line to the file descriptor named by JOBENGINE_EVENTS_FD, with the text the
# default callback would have printed for it. Text displayed outside any
# event (warnings, errors, verbose output) becomes an event of its own, so
# nothing reaches the real stdout once this plugin is loaded. Event names
# are ansible-runner's (runner_on_ok, playbook_on_task_start, ...).
#
# The engine assigns counters and redacts secrets; this side only reports.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = '''
    name: jobengine
    type: stdout
    short_description: the default output, with every event as a JSON line for jobengine
    description:
      - Writes one JSON line per event to the file descriptor in JOBENGINE_EVENTS_FD.
    extends_documentation_fragment:
      - default_callback
'''

import copy
import datetime
import json
import os
import threading
import uuid

from ansible import constants as C
from ansible.plugins.loader import callback_loader
from ansible.utils.display import Display

try:
    from ansible.module_utils.common.json import AnsibleJSONEncoder as _BaseEncoder
except ImportError:  # older ansible
    _BaseEncoder = json.JSONEncoder

DefaultCallbackModule = callback_loader.get('default').__class__

# Results larger than this (encoded) are replaced by a note: events must stay
# small enough to be indexed and streamed.
MAX_RES = int(os.environ.get('JOBENGINE_MAX_EVENT_RES', '262144'))
CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"


class _Encoder(_BaseEncoder):
    def default(self, o):
        try:
            return super(_Encoder, self).default(o)
        except TypeError:
            return str(o)


def _now():
    return datetime.datetime.utcnow().isoformat() + 'Z'


class _Writer:
    """Writes events as JSON lines to the events descriptor (main process only)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.fd = None
        fd = os.environ.get('JOBENGINE_EVENTS_FD')
        if fd:
            try:
                self.fd = int(fd)
            except ValueError:
                self.fd = None

    def write(self, event):
        line = json.dumps(event, cls=_Encoder, ensure_ascii=False, sort_keys=True) + '\n'
        data = line.encode('utf-8', 'replace')
        with self.lock:
            if self.fd is None:
                return
            while data:
                n = os.write(self.fd, data)
                data = data[n:]


_writer = _Writer()
_local = threading.local()


def _stack():
    s = getattr(_local, 'stack', None)
    if s is None:
        s = _local.stack = []
    return s


_orig_display = Display.display


def _display(self, msg, color=None, stderr=False, screen_only=False, log_only=False, newline=True):
    # In a worker process, Display proxies to the main process, where this
    # function runs again; log_only text goes to the log file only.
    if getattr(self, '_final_q', None) or log_only or _writer.fd is None:
        return _orig_display(self, msg, color=color, stderr=stderr, screen_only=screen_only,
                             log_only=log_only, newline=newline)
    stack = _stack()
    if stack:
        stack[-1].append(msg)
        return None
    kind = getattr(_local, 'kind', None) or ('warning' if stderr else 'verbose')
    _writer.write({
        'event': kind, 'uuid': str(uuid.uuid4()), 'created': _now(), 'pid': os.getpid(),
        'stdout': msg.rstrip('\n'), 'event_data': {},
    })
    return None


Display.display = _display


def _kind(name, method):
    def wrapper(self, *args, **kwargs):
        prev = getattr(_local, 'kind', None)
        _local.kind = name
        try:
            return method(self, *args, **kwargs)
        finally:
            _local.kind = prev
    wrapper.__name__ = method.__name__
    return wrapper


for _name, _kind_name in (('warning', 'warning'), ('deprecated', 'deprecated'), ('error', 'error'),
                          ('verbose', 'verbose'), ('debug', 'debug')):
    if hasattr(Display, _name):
        setattr(Display, _name, _kind(_kind_name, getattr(Display, _name)))


def _res(result):
    res = getattr(result, '_result', None)
    if not isinstance(res, dict):
        return {}
    if res.get('_ansible_no_log', False):
        return {'censored': CENSORED}
    res = copy.copy(res)
    if isinstance(res.get('results'), list):
        res['results'] = [{'censored': CENSORED} if isinstance(i, dict) and i.get('_ansible_no_log') else i
                          for i in res['results']]
    try:
        if len(json.dumps(res, cls=_Encoder)) > MAX_RES:
            return {'truncated': 'the result was larger than %d bytes' % MAX_RES}
    except Exception:
        return {'unencodable': True}
    return res


class CallbackModule(DefaultCallbackModule):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'jobengine'

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._ctx = {}
        self._starts = {}

    def _emit(self, event, fn, data, uid=None, parent=None):
        buf = []
        stack = _stack()
        stack.append(buf)
        try:
            if fn is not None:
                fn()
        finally:
            stack.pop()
        ev_data = dict(self._ctx)
        ev_data.update(data)
        ev = {
            'event': event,
            'uuid': uid or str(uuid.uuid4()),
            'created': _now(),
            'pid': os.getpid(),
            'stdout': '\n'.join(l.rstrip() for m in buf for l in m.split('\n')).strip('\n'),
            'event_data': ev_data,
        }
        if parent:
            ev['parent_uuid'] = parent
        _writer.write(ev)

    def _parent(self):
        return self._ctx.get('task_uuid') or self._ctx.get('play_uuid') or self._ctx.get('playbook_uuid')

    # playbook, plays and tasks

    def v2_playbook_on_start(self, playbook):
        pid = str(uuid.uuid4())
        self._ctx = {'playbook': getattr(playbook, '_file_name', ''), 'playbook_uuid': pid}
        self._emit('playbook_on_start', lambda: super(CallbackModule, self).v2_playbook_on_start(playbook), {}, uid=pid)

    def v2_playbook_on_play_start(self, play):
        hosts = getattr(play, 'hosts', '')
        pattern = ','.join(hosts) if isinstance(hosts, list) else (hosts or '')
        name = play.get_name().strip() or pattern
        for k in ('task', 'task_uuid', 'task_action', 'task_path'):
            self._ctx.pop(k, None)
        self._ctx.update(play=name, play_uuid=str(play._uuid), play_pattern=pattern)
        self._emit('playbook_on_play_start', lambda: super(CallbackModule, self).v2_playbook_on_play_start(play),
                   {'name': name, 'pattern': pattern}, uid=str(play._uuid), parent=self._ctx.get('playbook_uuid'))

    def _task(self, event, task, fn, extra):
        self._ctx.update(task=task.get_name().strip() or task.action, task_uuid=str(task._uuid),
                         task_action=task.action)
        try:
            self._ctx['task_path'] = task.get_path()
        except Exception:
            self._ctx.pop('task_path', None)
        data = {'name': task.get_name()}
        data.update(extra)
        self._emit(event, fn, data, uid=str(task._uuid), parent=self._ctx.get('play_uuid'))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task('playbook_on_task_start', task,
                   lambda: super(CallbackModule, self).v2_playbook_on_task_start(task, is_conditional),
                   {'is_conditional': is_conditional})

    def v2_playbook_on_handler_task_start(self, task):
        self._task('playbook_on_task_start', task,
                   lambda: super(CallbackModule, self).v2_playbook_on_handler_task_start(task),
                   {'is_conditional': True, 'handler': True})

    def v2_playbook_on_cleanup_task_start(self, task):
        self._task('playbook_on_task_start', task,
                   lambda: super(CallbackModule, self).v2_playbook_on_cleanup_task_start(task),
                   {'is_conditional': True})

    def v2_playbook_on_no_hosts_matched(self):
        self._emit('playbook_on_no_hosts_matched',
                   lambda: super(CallbackModule, self).v2_playbook_on_no_hosts_matched(), {}, parent=self._parent())

    def v2_playbook_on_no_hosts_remaining(self):
        self._emit('playbook_on_no_hosts_remaining',
                   lambda: super(CallbackModule, self).v2_playbook_on_no_hosts_remaining(), {}, parent=self._parent())

    def v2_playbook_on_include(self, included_file):
        self._emit('playbook_on_include', lambda: super(CallbackModule, self).v2_playbook_on_include(included_file),
                   {'included_file': getattr(included_file, '_filename', None)}, parent=self._parent())

    def v2_playbook_on_notify(self, handler, host):
        self._emit('playbook_on_notify', lambda: super(CallbackModule, self).v2_playbook_on_notify(handler, host),
                   {'handler': handler.get_name(), 'host': host.get_name()}, parent=self._parent())

    def v2_playbook_on_stats(self, stats):
        data = {}
        for key in ('changed', 'dark', 'failures', 'ignored', 'ok', 'processed', 'rescued', 'skipped'):
            data[key] = dict(getattr(stats, key, {}) or {})
        # What set_stats recorded for the whole run (per_host: no), as
        # ansible-runner's callback reports it.
        custom = getattr(stats, 'custom', None) or {}
        data['artifact_data'] = custom.get('_run', {}) if isinstance(custom, dict) else {}
        for k in ('task', 'task_uuid', 'task_action', 'task_path', 'play', 'play_uuid', 'play_pattern'):
            self._ctx.pop(k, None)
        self._emit('playbook_on_stats', lambda: super(CallbackModule, self).v2_playbook_on_stats(stats), data,
                   parent=self._ctx.get('playbook_uuid'))

    # per-host results

    def _host_data(self, result, extra=None, final=True):
        host = result._host.get_name()
        task = result._task
        key = (host, str(task._uuid))
        start = self._starts.pop(key, None) if final else self._starts.get(key)
        end = datetime.datetime.utcnow()
        data = {
            'host': host,
            'remote_addr': host,
            'task': task.get_name().strip() or task.action,
            'task_uuid': str(task._uuid),
            'task_action': task.action,
            'res': _res(result),
            'end': end.isoformat() + 'Z',
        }
        if start is not None:
            data['start'] = start.isoformat() + 'Z'
            data['duration'] = (end - start).total_seconds()
        if extra:
            data.update(extra)
        return data

    def v2_runner_on_start(self, host, task):
        self._starts[(host.get_name(), str(task._uuid))] = datetime.datetime.utcnow()
        self._emit('runner_on_start', lambda: super(CallbackModule, self).v2_runner_on_start(host, task),
                   {'host': host.get_name(), 'task': task.get_name().strip() or task.action,
                    'task_uuid': str(task._uuid), 'task_action': task.action}, parent=str(task._uuid))

    def _result(self, event, result, fn, extra=None):
        data = self._host_data(result, extra, final=not event.startswith(('runner_item_', 'runner_retry', 'runner_on_async_poll')))
        self._emit(event, fn, data, parent=str(result._task._uuid))

    def v2_runner_on_ok(self, result):
        self._result('runner_on_ok', result, lambda: super(CallbackModule, self).v2_runner_on_ok(result))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result('runner_on_failed', result,
                     lambda: super(CallbackModule, self).v2_runner_on_failed(result, ignore_errors=ignore_errors),
                     {'ignore_errors': ignore_errors})

    def v2_runner_on_skipped(self, result):
        self._result('runner_on_skipped', result, lambda: super(CallbackModule, self).v2_runner_on_skipped(result))

    def v2_runner_on_unreachable(self, result):
        self._result('runner_on_unreachable', result,
                     lambda: super(CallbackModule, self).v2_runner_on_unreachable(result))

    def v2_runner_item_on_ok(self, result):
        self._result('runner_item_on_ok', result, lambda: super(CallbackModule, self).v2_runner_item_on_ok(result))

    def v2_runner_item_on_failed(self, result):
        self._result('runner_item_on_failed', result,
                     lambda: super(CallbackModule, self).v2_runner_item_on_failed(result))

    def v2_runner_item_on_skipped(self, result):
        self._result('runner_item_on_skipped', result,
                     lambda: super(CallbackModule, self).v2_runner_item_on_skipped(result))

    def v2_runner_retry(self, result):
        self._result('runner_retry', result, lambda: super(CallbackModule, self).v2_runner_retry(result))

    def v2_runner_on_async_poll(self, result):
        self._result('runner_on_async_poll', result,
                     lambda: super(CallbackModule, self).v2_runner_on_async_poll(result))

    def v2_runner_on_async_ok(self, result):
        self._result('runner_on_async_ok', result, lambda: super(CallbackModule, self).v2_runner_on_async_ok(result))

    def v2_runner_on_async_failed(self, result):
        self._result('runner_on_async_failed', result,
                     lambda: super(CallbackModule, self).v2_runner_on_async_failed(result))

    def v2_on_file_diff(self, result):
        # The diff itself is in the text; the result is not repeated.
        host = result._host.get_name()
        self._emit('runner_on_file_diff', lambda: super(CallbackModule, self).v2_on_file_diff(result),
                   {'host': host, 'task_uuid': str(result._task._uuid)}, parent=str(result._task._uuid))
