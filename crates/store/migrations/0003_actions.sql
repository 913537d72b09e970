-- Client actions (Chatbase Custom Actions) offered to the model as tools: a JSON
-- array of {name, description, parameters} per agent.
ALTER TABLE agents ADD COLUMN actions TEXT NOT NULL DEFAULT '[]';
