/** The account's devices, this one marked; any other can be removed (it stops receiving at once). */
import { useState } from 'preact/hooks';
import type { Device, Engine } from '../engine.js';
import { useLoaded } from './hooks.js';
import { Panel } from './panel.js';

export function DevicesPanel(props: { engine: Engine; onClose: () => void }) {
  const { engine } = props;
  const [refresh, setRefresh] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const devices = useLoaded<Device[]>(engine, () => engine.devices(), [refresh]);
  const [confirming, setConfirming] = useState<number | null>(null);

  const remove = async (id: number): Promise<void> => {
    setError(null);
    try {
      await engine.removeDevice(id);
      setConfirming(null);
      setRefresh((r) => r + 1);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <Panel title="Devices" onClose={props.onClose} testId="devices">
      <p class="hint">Every device of your account has its own keys. Remove a device you no longer use or do not recognise: it stops receiving messages at once.</p>
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="devices">
        {devices?.map((d) => (
          <li key={d.id} data-device={d.id}>
            <span>
              <strong>Device {d.id}</strong>
              {d.current && <span class="badge">This browser</span>}
            </span>
            {!d.current &&
              (confirming === d.id ? (
                <span class="row">
                  <button class="danger-btn small" onClick={() => void remove(d.id)}>
                    Remove device {d.id}
                  </button>
                  <button class="secondary small" onClick={() => setConfirming(null)}>
                    Cancel
                  </button>
                </span>
              ) : (
                <button class="secondary small" onClick={() => setConfirming(d.id)}>
                  Remove…
                </button>
              ))}
          </li>
        ))}
      </ul>
    </Panel>
  );
}
