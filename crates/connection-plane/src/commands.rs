//! The queue from the hub into one connection's task. Not a tokio channel: that allocates a block
//! of 32 slots and its cache-padded state up front for every connection, idle or not (about
//! 1.5 KiB each), where this queue holds memory only while commands wait, and a little after.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::connection::Command;

/// Slots an emptied queue may keep for the next burst before it gives its memory back.
const KEPT_SLOTS: usize = 8;

#[derive(Default)]
pub(crate) struct Commands {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queued: VecDeque<Command>,
    /// The task, waiting for a command.
    waker: Option<Waker>,
    /// The task takes no more commands.
    closed: bool,
}

impl Commands {
    /// Queues `command` for the task, waking it; gives the command back once the task has
    /// stopped taking them.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        let mut state = self.lock();
        if state.closed {
            return Err(command);
        }
        state.queued.push_back(command);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// The next command, or `Pending` (waking the task when one comes); `Ready(None)` once closed
    /// and empty.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        let mut state = self.lock();
        match state.queued.pop_front() {
            Some(command) => {
                if state.queued.is_empty() && state.queued.capacity() > KEPT_SLOTS {
                    state.queued = VecDeque::new();
                }
                Poll::Ready(Some(command))
            }
            None if state.closed => Poll::Ready(None),
            None => {
                if !state
                    .waker
                    .as_ref()
                    .is_some_and(|waker| waker.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Takes no more commands, and hands back those still queued.
    pub(crate) fn close(&self) -> VecDeque<Command> {
        let mut state = self.lock();
        state.closed = true;
        state.waker = None;
        std::mem::take(&mut state.queued)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn next(commands: &Commands) -> Poll<Option<Command>> {
        commands.poll_next(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn commands_come_out_in_order_and_an_emptied_queue_lets_its_memory_go() {
        let commands = Commands::default();
        assert!(next(&commands).is_pending());
        for code in 3000..3100 {
            assert!(commands.send(Command::Close(code, String::new())).is_ok());
        }
        for code in 3000..3100 {
            assert!(
                matches!(next(&commands), Poll::Ready(Some(Command::Close(c, _))) if c == code)
            );
        }
        assert!(next(&commands).is_pending());
        assert_eq!(commands.lock().queued.capacity(), 0);
    }

    #[test]
    fn a_closed_queue_hands_back_what_waited_and_refuses_more() {
        let commands = Commands::default();
        assert!(commands.send(Command::Resume).is_ok());
        assert!(matches!(
            commands.close().pop_front(),
            Some(Command::Resume)
        ));
        assert!(matches!(
            commands.send(Command::Resume),
            Err(Command::Resume)
        ));
        assert!(matches!(next(&commands), Poll::Ready(None)));
    }
}
